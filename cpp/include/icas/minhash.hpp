#pragma once
// MinHash signature similarity: signatures are (n, k) uint64 or uint32,
// row-major, C-contiguous (datasketch's MinHash.hashvalues, k = num_perm:
// uint32 for its default "affine32" scheme, uint64 for "affine64" and
// "legacy"). The similarity of two signatures is the share of equal slots,
// double(count) / double(k): bit for bit datasketch.MinHash.jaccard.
// Every function has a uint64_t and a uint32_t overload.
#include <cstdint>
#include <string>
#include <vector>

#include "icas/pairs.hpp"

namespace icas {

/// Count kernels: a hand-written AVX-512 tile (eight pairs per pass), or the
/// plain loops compiled as AVX-512 / AVX2 / baseline clones ("generic").
/// `Auto` picks the AVX-512 tile when the CPU has AVX-512F.
enum class MinhashKernel { Auto, Avx512, Generic };

/// Names of the kernels this CPU can run, fastest first ("avx512", "generic").
std::vector<std::string> minhash_kernels();

/// Kernel from its name ("auto" or one of minhash_kernels()). Throws
/// std::invalid_argument for an unknown name or one this CPU cannot run.
MinhashKernel minhash_kernel_from_name(const std::string& name);

/// Smallest count c in [0, k] with `double(c) / double(k) >= threshold` in
/// double precision (k + 1 when none qualifies). k >= 1.
int64_t minhash_min_count(double threshold, int64_t k);

/// Similarity of every pair: out (n, n) float64, row-major, caller-owned,
/// fully written (diagonal 1, symmetric). sigs (n, k). Runs on `n_threads`
/// OpenMP threads (0 default, -1 all cores); the result does not depend on
/// the thread count. Throws std::invalid_argument for n < 0 or k < 1.
void minhash_matrix(const uint64_t* sigs, int64_t n, int64_t k, double* out, int n_threads,
                    MinhashKernel kernel = MinhashKernel::Auto);
void minhash_matrix(const uint32_t* sigs, int64_t n, int64_t k, double* out, int n_threads,
                    MinhashKernel kernel = MinhashKernel::Auto);

/// Similarity of every (i, j), i in a (na, k), j in b (nb, k): out (na, nb)
/// float64, row-major, caller-owned. Threads as minhash_matrix.
void minhash_cross(const uint64_t* a, int64_t na, const uint64_t* b, int64_t nb, int64_t k,
                   double* out, int n_threads, MinhashKernel kernel = MinhashKernel::Auto);
void minhash_cross(const uint32_t* a, int64_t na, const uint32_t* b, int64_t nb, int64_t k,
                   double* out, int n_threads, MinhashKernel kernel = MinhashKernel::Auto);

/// Pairs i < j whose similarity is >= opt.threshold (compared in double),
/// skipping pairs of equal opt.groups when given. Edges ordered by (i, j)
/// whatever the thread count; scores are float(double(count) / double(k)).
Edges minhash_pairs(const uint64_t* sigs, int64_t n, int64_t k, const PairOptions& opt,
                    MinhashKernel kernel = MinhashKernel::Auto);
Edges minhash_pairs(const uint32_t* sigs, int64_t n, int64_t k, const PairOptions& opt,
                    MinhashKernel kernel = MinhashKernel::Auto);

/// Connected components of the graph of minhash_pairs, written to labels
/// (n,) int64 (caller-owned) in order of first appearance. Pairs are computed
/// in tiles as in minhash_pairs, but a row keeps at most one edge per
/// component it reaches (exact), so memory stays O(n) at any threshold.
void minhash_components(const uint64_t* sigs, int64_t n, int64_t k, const PairOptions& opt,
                        int64_t* labels, MinhashKernel kernel = MinhashKernel::Auto);
void minhash_components(const uint32_t* sigs, int64_t n, int64_t k, const PairOptions& opt,
                        int64_t* labels, MinhashKernel kernel = MinhashKernel::Auto);

}  // namespace icas
