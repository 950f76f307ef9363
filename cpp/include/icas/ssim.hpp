#pragma once
// Mean structural similarity (SSIM) of grayscale uint8 images, with
// scikit-image's defaults: 7x7 uniform window, K1 = 0.01, K2 = 0.03, data range
// 255, sample covariance (N / (N - 1)), and the SSIM map averaged over the
// windows that lie fully inside the image (skimage crops a 3-pixel border).
//
// Only whole windows count, so every window statistic is an exact integer:
// per image once, the window sums Sx and N*Sxx - Sx^2 (N = 49); per pair only
// the cross sums Sxy (separable running sums) and N*Sxy - Sx*Sy. The SSIM
// formula is then evaluated in float32 from these exact integers and averaged
// in double, so values agree with skimage (float64 filters) to about 1e-6.
// Identical images give exactly 1.0, and ssim(a, b) == ssim(b, a) bit for bit.
//
// Images are (n, h, w) C-contiguous uint8 buffers (row-major, image after
// image), h >= 7 and w >= 7. Results are float32; SSIM lies in [-1, 1] and is
// reported as is (no clipping: structurally inverted images are negative).
// The batched forms keep the per-image statistics for the call: about
// 12 h w bytes per image, besides a few kB of scratch per thread.
#include <cstdint>

#include "icas/pairs.hpp"

namespace icas {

/// Side of the SSIM window (scikit-image's default win_size).
inline constexpr int64_t kSsimWindow = 7;

/// Throws std::invalid_argument unless h >= 7 and w >= 7 (the window must fit
/// inside the image), with a message in the spirit of scikit-image's.
void ssim_check_size(int64_t h, int64_t w);

/// Mean SSIM of one pair of (h, w) uint8 images `a` and `b` (not owned, only
/// read). Single-threaded; allocates its own scratch. For many pairs use the
/// batched forms below, which compute the per-image statistics once.
double ssim(const uint8_t* a, const uint8_t* b, int64_t h, int64_t w);

/// out (n, n) float32 = SSIM of every pair of the n images (n, h, w); the
/// diagonal is 1. Each unordered pair is computed once and mirrored.
/// OpenMP over tiles of pairs with `n_threads` (0 default, -1 all cores).
void ssim_matrix(const uint8_t* images, int64_t n, int64_t h, int64_t w, float* out, int n_threads);

/// out (na, nb) float32 = SSIM of a[i] (na, h, w) against b[j] (nb, h, w).
/// OpenMP over tiles of pairs with `n_threads`.
void ssim_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t h, int64_t w,
                float* out, int n_threads);

/// Every pair i < j of the n images (n, h, w) whose float32 SSIM (the value
/// ssim_matrix reports, not clipped: thresholds in [-1, 1] make sense) is
/// >= opt.threshold and whose groups differ when opt.groups (n,) is given.
/// Edges ordered by (i, j) for any thread count; memory O(n + edges).
Edges ssim_pairs(const uint8_t* images, int64_t n, int64_t h, int64_t w, const PairOptions& opt);

/// Connected components of the graph of ssim_pairs(images, opt), written to
/// labels (n,) in order of first appearance; pairs whose two images are
/// already joined are not computed. OpenMP with opt.n_threads.
void ssim_components(const uint8_t* images, int64_t n, int64_t h, int64_t w, const PairOptions& opt,
                     int64_t* labels);

}  // namespace icas
