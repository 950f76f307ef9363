#pragma once
// icas CUDA kernels: plain C++ entry points (no CUDA types, no Python), called
// by the thin binding cuda/bind_cuda.cpp that makes the icas._cuda module.
//
// Every function copies its inputs to the device once, computes the result
// in square tiles sized to fit the free device memory, and writes to
// caller-owned host memory. The threshold forms compact the pairs on the
// device and copy back only the kept pairs (never an n x n matrix). The
// per-pair arithmetic is icas/pair_math.hpp, shared with the CPU kernels, so
// results equal the CPU ones (bit for bit for hamming, minhash, tm and orb;
// ssim to float rounding of the window sum order, about 1e-6).
//
// Errors (no driver, no device, out of memory, a failed launch) throw
// std::runtime_error with CUDA's message; bad shapes throw
// std::invalid_argument. Functions run on the current device, synchronously.
#include <cstdint>
#include <string>
#include <vector>

namespace icas::cuda {

/// Pairs i < j with their float32 scores, ordered by (i, j).
struct PairList {
    std::vector<int64_t> ij;   ///< (m, 2) row-major
    std::vector<float> score;  ///< (m,)
};

/// Number of CUDA devices that answer; 0 without a driver or device (never throws).
int device_count();

/// One line about the runtime and the first device, or why none answers.
std::string describe();

/// CUDA architectures the kernels were compiled for, e.g. "75,80,86,89,90".
std::string architectures();

// ---------------------------------------------------------------- hamming
/// out (n, n) int32 bit distances of codes (n, n_bytes) uint8.
void hamming_matrix(const uint8_t* codes, int64_t n, int64_t n_bytes, int32_t* out);
/// out (na, nb) int32 bit distances between a (na, n_bytes) and b (nb, n_bytes).
void hamming_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t n_bytes,
                   int32_t* out);
/// Pairs with 1 - d / bits >= threshold (groups (n,) or null: skip equal groups).
PairList hamming_pairs(const uint8_t* codes, int64_t n, int64_t n_bytes, double threshold,
                       const int64_t* groups);

// ---------------------------------------------------------------- minhash
/// out (n, n) float64 share of equal slots of signatures (n, k).
void minhash_matrix(const uint32_t* sigs, int64_t n, int64_t k, double* out);
void minhash_matrix(const uint64_t* sigs, int64_t n, int64_t k, double* out);
/// out (na, nb) float64 between a (na, k) and b (nb, k).
void minhash_cross(const uint32_t* a, int64_t na, const uint32_t* b, int64_t nb, int64_t k,
                   double* out);
void minhash_cross(const uint64_t* a, int64_t na, const uint64_t* b, int64_t nb, int64_t k,
                   double* out);
/// Pairs with count / k >= threshold.
PairList minhash_pairs(const uint32_t* sigs, int64_t n, int64_t k, double threshold,
                       const int64_t* groups);
PairList minhash_pairs(const uint64_t* sigs, int64_t n, int64_t k, double threshold,
                       const int64_t* groups);

// ---------------------------------------------------------------- tm
/// out (n, n) float32 template-matching similarity of rows of x (n, len)
/// uint8 (flattened images of one size): exact integer Gram tiles on the device.
void tm_matrix(const uint8_t* x, int64_t n, int64_t len, float* out);
/// out (na, nb) float32 between rows of a (na, len) and b (nb, len).
void tm_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t len, float* out);
/// Pairs with similarity (double) >= threshold.
PairList tm_pairs(const uint8_t* x, int64_t n, int64_t len, double threshold,
                  const int64_t* groups);

// ---------------------------------------------------------------- ssim
/// out (n, n) float32 mean SSIM of images (n, h, w) uint8 (h, w >= 7).
void ssim_matrix(const uint8_t* images, int64_t n, int64_t h, int64_t w, float* out);
/// out (na, nb) float32 between a (na, h, w) and b (nb, h, w).
void ssim_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t h, int64_t w,
                float* out);
/// Pairs whose float32 SSIM is >= threshold (a threshold in [-1, 1]).
PairList ssim_pairs(const uint8_t* images, int64_t n, int64_t h, int64_t w, double threshold,
                    const int64_t* groups);

// ---------------------------------------------------------------- orb
/// out (n, n) float64 ORB similarity (cross-checked matching + ratio rule) of
/// n images whose 32-byte descriptors are rows offsets[i] .. offsets[i + 1]
/// of descriptors (total, 32).
void orb_matrix(const uint8_t* descriptors, const int64_t* offsets, int64_t n, int64_t total,
                double* out);
/// out (na, nb) float64 between the images of a and those of b.
void orb_cross(const uint8_t* desc_a, const int64_t* off_a, int64_t na, int64_t total_a,
               const uint8_t* desc_b, const int64_t* off_b, int64_t nb, int64_t total_b,
               double* out);
/// Pairs with similarity >= threshold.
PairList orb_pairs(const uint8_t* descriptors, const int64_t* offsets, int64_t n, int64_t total,
                   double threshold, const int64_t* groups);

}  // namespace icas::cuda
