#pragma once
// Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming
// Space with Multi-Index Hashing", CVPR 2012) for the threshold forms of the
// Hamming kernels: every pair of codes within distance R, without comparing
// every pair, and exactly the pairs hamming_pairs returns.
//
// Codes are (n, n_bytes) uint8, row-major, C-contiguous; bit b of a code is
// bit (b % 8) of byte b / 8. The bits are split into m contiguous substrings.
// Write R = m * q + a (0 <= a < m): if two codes were farther than q on each
// of the first a + 1 substrings and farther than q - 1 on each other one,
// their distance would be at least (a + 1)(q + 1) + (m - a - 1) q = R + 1.
// So a pair within R agrees within q bits on one of the first a + 1
// substrings or within q - 1 bits on one of the others (pigeonhole). For
// each substring a table maps its value to the codes holding it; a code's
// candidates are the codes in the buckets within that radius of its own
// value, verified with the exact distance. A pair reached from several
// substrings is kept only from the first one that reaches it, so nothing is
// deduplicated through shared state and the tables need not all be held at
// once: they are built and searched in groups of about 64 MiB.
#include <cstdint>

#include "icas/pairs.hpp"

namespace icas {

/// What the planner chose for n codes of `bits` bits and radius max_d.
struct MihPlan {
    int64_t substrings = 0;      ///< m of the cheapest index (0 when max_d < 0)
    int64_t tables = 0;          ///< substrings actually searched: min(m, max_d + 1)
    int64_t max_distance = -1;   ///< the radius R
    double index_seconds = 0.0;  ///< cost model estimate of the index, one thread
    double brute_seconds = 0.0;  ///< cost model estimate of the brute-force kernel
    bool use_index = false;      ///< index_seconds < brute_seconds
};

/// Longest substring the index uses for n codes: ceil(log2 n) + 2 bits,
/// clamped to [16, 28], so a table's offsets (one uint32 per substring value)
/// take at most 32 n bytes or 256 KiB, next to 8 n bytes of ids and values.
int64_t mih_max_substring_bits(int64_t n);

/// The index for n codes of `bits` bits within distance max_d. The rule: m
/// ranges over ceil(bits / mih_max_substring_bits(n)) .. bits, and the m
/// with the lowest cost-model time is kept. The model assumes uniformly
/// random bits: per searched substring of s bits and radius r, a query makes
/// P = sum_{w <= r} C(s, w) table probes and scans n * P / 2^s candidates;
/// building a table costs O(n + 2^s). Its constants were measured on an
/// AVX-512 machine (see mih.cpp) and the brute-force estimate is
/// n (n - 1) / 2 times the measured time per pair. use_index is set when
/// the index is cheaper, which needs both n large and max_d small next to
/// bits. Depends only on its arguments and on whether the CPU has AVX-512
/// VPOPCNTDQ (which makes 64-bit candidates cheaper).
MihPlan mih_plan(int64_t n, int64_t bits, int64_t max_d);

/// Pairs i < j within hamming_max_distance(opt.threshold, 8 * n_bytes),
/// skipping pairs of equal opt.groups when given: the same edges, order and
/// float32 scores as hamming_pairs. `substrings`: 0 lets mih_plan decide,
/// including running hamming_pairs when the index does not pay; -1 uses the
/// index with the plan's m; m >= 1 uses the index with m substrings (m in
/// [ceil(bits / mih_max_substring_bits(n)), bits], else
/// std::invalid_argument). Tables are built and searched in groups of about
/// 64 MiB (one table: 4 (2^s + 2n) bytes, plus n * n_bytes for codes of
/// at most 64 bytes, copied in bucket order), on top of the result. Queries
/// run in blocks on opt.n_threads OpenMP threads (0 default, -1 all cores;
/// one when the model expects under 10 ms per group); the result does not
/// depend on the thread count. codes are borrowed for the call. Throws
/// std::invalid_argument for n outside [0, 2^32) or n_bytes outside
/// [1, 2^28).
Edges hamming_index_pairs(const uint8_t* codes, int64_t n, int64_t n_bytes, const PairOptions& opt,
                          int64_t substrings = 0);

/// Connected components of the graph of hamming_index_pairs (the same labels
/// as hamming_components), written to labels (n,) int64, caller-owned, in
/// order of first appearance. Queries go in waves; within a wave a query
/// keeps one edge per component it reaches and none into its own (roots read
/// with UnionFind::find_const); edges are united after the wave, so memory
/// stays O(n) plus the edges of one wave. `substrings` and threads as
/// hamming_index_pairs.
void hamming_index_components(const uint8_t* codes, int64_t n, int64_t n_bytes,
                              const PairOptions& opt, int64_t* labels, int64_t substrings = 0);

}  // namespace icas
