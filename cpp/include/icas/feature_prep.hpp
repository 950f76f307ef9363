#pragma once
// Per-image steps of the feature extraction that numpy does in several
// passes over the image, done here in one (the feature pipeline runs them
// once per image, on worker threads, without the GIL).
#include <cstdint>

namespace icas {

/// Indices (into the flat array r of `size` values) of the up to `k` largest
/// strictly positive values, strongest first, equal values in increasing
/// index order: the first k of a stable sort of the positive values by
/// decreasing value. Writes them to out (caller-owned, room for k) and
/// returns how many (fewer than k when fewer values are positive). NaN is
/// never positive. Single-threaded, thread-safe; O(size) plus a sort of the
/// values at least as large as the k-th largest.
int64_t strongest_positive(const float* r, int64_t size, int64_t k, int64_t* out);

/// The row fold of a DCT-II over an (n, n) uint8 image (n even), h = n / 2:
/// sum[i, c] = px[i, c] + px[n - 1 - i, c] and diff[i, c] = px[i, c] -
/// px[n - 1 - i, c] for i < h, as float64 (exact), each (h, n) row-major and
/// caller-owned. Returns the sum of all pixels (exact in uint64).
/// Single-threaded, thread-safe.
uint64_t dct_row_fold(const uint8_t* px, int64_t n, double* sum, double* diff);

/// The row fold of dct_row_fold with the sum folded once more (n a multiple
/// of 4), q = n / 4: with S the (h, n) sum of dct_row_fold,
/// ss[i, c] = S[i, c] + S[h - 1 - i, c] and sd[i, c] = S[i, c] - S[h - 1 - i, c]
/// for i < q ((q, n) each), and diff as in dct_row_fold ((h, n)); all float64
/// (exact), row-major and caller-owned. The even DCT rows 0, 4, 8... then need
/// only ss and rows 2, 6, 10... only sd: half the products of the sum.
/// Returns the sum of all pixels. Single-threaded, thread-safe.
uint64_t dct_row_fold4(const uint8_t* px, int64_t n, double* ss, double* sd, double* diff);

}  // namespace icas
