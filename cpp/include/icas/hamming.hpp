#pragma once
// Hamming distances between binary codes (perceptual hashes packed with
// np.packbits, ORB-like descriptors): codes are (n, n_bytes) uint8, row-major,
// C-contiguous. Distances are exact bit counts; the threshold forms use the
// similarity 1 - d / bits with bits = 8 * n_bytes.
//
// The popcount kernel is chosen at run time (AVX-512 VPOPCNTDQ, AVX2,
// hardware popcnt, portable) so the library is compiled for baseline x86-64.
#include <cstdint>
#include <string>
#include <vector>

#include "icas/pairs.hpp"

namespace icas {

/// Popcount kernels, fastest first. `Auto` picks the fastest this CPU runs.
enum class HammingKernel { Auto, Avx512, Avx2, Popcnt, Portable };

/// Names of the kernels this CPU can run, fastest first ("avx512", "avx2",
/// "popcnt", "portable"); the first one is what `Auto` uses.
std::vector<std::string> hamming_kernels();

/// Kernel from its name ("auto" or one of hamming_kernels()). Throws
/// std::invalid_argument for an unknown name or one this CPU cannot run.
HammingKernel hamming_kernel_from_name(const std::string& name);

/// Largest distance d in [0, bits] with `1.0 - double(d) / double(bits) >=
/// threshold` evaluated in double precision, exactly as a caller computing the
/// similarity in float64 would; -1 when no distance qualifies. bits >= 1.
int64_t hamming_max_distance(double threshold, int64_t bits);

/// Distance of every pair: out (n, n) int32, row-major, caller-owned, fully
/// written (zero diagonal, symmetric). codes (n, n_bytes). Runs on
/// `n_threads` OpenMP threads (0 default, -1 all cores); the result does not
/// depend on the thread count. Throws std::invalid_argument for n < 0 or
/// n_bytes outside [1, 2^28).
void hamming_matrix(const uint8_t* codes, int64_t n, int64_t n_bytes, int32_t* out, int n_threads,
                    HammingKernel kernel = HammingKernel::Auto);

/// Distance of every (i, j), i in a (na, n_bytes), j in b (nb, n_bytes):
/// out (na, nb) int32, row-major, caller-owned. Threads as hamming_matrix.
void hamming_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t n_bytes,
                   int32_t* out, int n_threads, HammingKernel kernel = HammingKernel::Auto);

/// Pairs i < j whose similarity 1 - d / bits is >= opt.threshold (that is
/// d <= hamming_max_distance(opt.threshold, bits)), skipping pairs of equal
/// opt.groups when given. Edges ordered by (i, j) whatever the thread count;
/// scores are float(1.0 - double(d) / double(bits)).
Edges hamming_pairs(const uint8_t* codes, int64_t n, int64_t n_bytes, const PairOptions& opt,
                    HammingKernel kernel = HammingKernel::Auto);

/// Connected components of the graph of hamming_pairs, written to labels
/// (n,) int64 (caller-owned) in order of first appearance. Pairs are computed
/// in tiles as in hamming_pairs, but a row keeps at most one edge per
/// component it reaches (exact), so memory stays O(n) at any threshold.
void hamming_components(const uint8_t* codes, int64_t n, int64_t n_bytes, const PairOptions& opt,
                        int64_t* labels, HammingKernel kernel = HammingKernel::Auto);

}  // namespace icas
