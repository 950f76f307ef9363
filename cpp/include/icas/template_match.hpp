#pragma once
// Template matching similarity: 1 - TM_SQDIFF_NORMED, as cv::matchTemplate
// computes it, from exact integer arithmetic.
//
// For two images of one size the normalised squared difference is
//     (|a|^2 + |b|^2 - 2 a.b) / (|a| |b|)
// so all pairs of n images need n squared norms and the Gram matrix X X^T of
// the flattened images X (n, len). The Gram matrix is an integer GEMM: uint8
// values widened to int16, multiplied pairwise and summed into int32 lanes
// (vpmaddwd), flushed to int64 per depth block, so every dot product is exact
// and results do not depend on the thread count or the instruction set.
//
// Threads: every function takes n_threads (0 OpenMP default, -1 all cores,
// k) as an upper bound; jobs of less than about a millisecond of work run on
// the calling thread, since waking workers would cost more than it saves.
//
// Edge cases follow OpenCV: the normalised value is clamped to at most 1, and
// a pair where either image is all zeros has the value 1 (similarity 0), even
// two black images.
#include <cstdint>

#include "icas/pairs.hpp"

namespace icas {

/// Similarity 1 - min(sq / (|a| |b|), 1) of two equal-sized images from their
/// squared norms `na` = |a|^2, `nb` = |b|^2 and dot product a.b (all exact).
/// 0 when either norm is 0 (OpenCV's value for an all-black image).
/// Symmetric in (na, nb) bit for bit.
double tm_score(int64_t na, int64_t nb, int64_t dot);

/// Squared L2 norm of each row of x (n, len) uint8, row-major, into out (n,).
/// Exact. Runs on `n_threads` threads (0 default, -1 all cores).
void tm_squared_norms(const uint8_t* x, int64_t n, int64_t len, int64_t* out, int n_threads);

/// out (n, n) float32 = similarity of every pair of rows of x (n, len) uint8
/// (flattened images of one size). Symmetric; the diagonal is 1 (0 for an
/// all-black image). The caller owns `out`. Parallel over Gram tiles.
void tm_matrix(const uint8_t* x, int64_t n, int64_t len, float* out, int n_threads);

/// out (na, nb) float32 = similarity of each row of a (na, len) with each row
/// of b (nb, len), both uint8 row-major. The caller owns `out`.
void tm_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t len, float* out,
              int n_threads);

/// Every pair i < j of rows of x (n, len) with similarity >= opt.threshold
/// (and different groups when opt.groups is set), ordered by (i, j) for any
/// thread count. Tiles whose items all share one group are not computed.
Edges tm_pairs(const uint8_t* x, int64_t n, int64_t len, const PairOptions& opt);

/// Connected components of the pairs tm_pairs would return, as labels (n,)
/// in order of first appearance (caller-owned). Each Gram tile keeps only a
/// spanning forest of its edges, so memory stays O(n) whatever the cluster
/// sizes; tiles whose items are already in one component are skipped (exact).
void tm_components(const uint8_t* x, int64_t n, int64_t len, const PairOptions& opt,
                   int64_t* labels);

/// 1 - min over positions of TM_SQDIFF_NORMED of `templ` (th, tw, channels)
/// slid over `image` (ih, iw, channels), both uint8 row-major with
/// interleaved channels: what 1 - cv::matchTemplate(image, templ,
/// TM_SQDIFF_NORMED).min() gives. Requires th <= ih and tw <= iw (throws
/// std::invalid_argument otherwise). Exact integer dot products, direct
/// sliding: O((ih - th + 1) (iw - tw + 1) th tw channels) work, parallel over
/// result rows on `n_threads` threads.
double tm_similarity(const uint8_t* image, int64_t ih, int64_t iw, const uint8_t* templ, int64_t th,
                     int64_t tw, int64_t channels, int n_threads);

}  // namespace icas
