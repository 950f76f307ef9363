#pragma once
// MinHash LSH banding (datasketch.MinHashLSH semantics) for the threshold
// forms of the MinHash kernels: signatures (n, k) uint64 or uint32 as in
// minhash.hpp are cut into `bands` bands of `rows` consecutive slots (slots
// [t * rows, (t + 1) * rows), bands * rows <= k, trailing slots unused, as
// datasketch's hashranges). Two signatures are candidates when all slots of
// at least one band are equal; candidates are verified with the exact
// share of equal slots over all k slots. So the result is the subset of
// minhash_pairs made of colliding pairs, with the same scores: a pair whose
// slots agree independently with probability s collides with probability
// 1 - (1 - s^rows)^bands.
#include <cstdint>

#include "icas/pairs.hpp"

namespace icas {

/// Pairs i < j sharing a band whose share of equal slots is >= opt.threshold
/// (compared in double as minhash_pairs), skipping pairs of equal opt.groups
/// when given. Edges ordered by (i, j), scores float(count / k), the same for
/// any thread count. Per band the signatures are sorted by a 64-bit hash of
/// the band (a hash collision only adds a candidate, rejected by comparing
/// the slots); a pair is kept from the first band it shares. Memory O(n) per
/// band plus the result. Runs on opt.n_threads OpenMP threads. Throws
/// std::invalid_argument for n outside [0, 2^32), k < 1, bands < 1,
/// rows < 1 or bands * rows > k.
Edges minhash_lsh_pairs(const uint64_t* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                        const PairOptions& opt);
Edges minhash_lsh_pairs(const uint32_t* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                        const PairOptions& opt);

/// Connected components of the graph of minhash_lsh_pairs, written to labels
/// (n,) int64 (caller-owned) in order of first appearance. Candidates already
/// joined (UnionFind::find_const) are skipped; edges are united in waves.
void minhash_lsh_components(const uint64_t* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                            const PairOptions& opt, int64_t* labels);
void minhash_lsh_components(const uint32_t* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                            const PairOptions& opt, int64_t* labels);

}  // namespace icas
