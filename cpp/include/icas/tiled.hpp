#pragma once
// Threshold drivers for kernels that fill tiles of int32 pair values
// (Hamming distances, MinHash match counts): the sparse pairs form and the
// chained components form. The kernels differ only in the tile function and
// in which values pass; the blocking, ordering and union-find logic is here.
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "icas/pairs.hpp"
#include "icas/parallel.hpp"
#include "icas/union_find.hpp"

namespace icas::tiled {

/// Pairs i < j of n items whose tile value passes `keep`, skipping pairs of
/// one group (opt.groups), ordered by (i, j) for any thread count.
///
/// `tile(i0, ni, j0, nj, out, ld)` fills out[i * ld + j] (i < ni, j < nj)
/// with the values of rows i0.. against rows j0..; it runs concurrently on
/// `threads` OpenMP threads, each with its own T x T buffer. Values that do
/// not pass `keep` may be bounded (inexact); kept ones must be exact.
/// `score(v)` is the float score of a kept value.
template <class Tile, class Keep, class Score>
Edges pairs(int64_t n, int64_t T, int threads, const PairOptions& opt, const Tile& tile,
            const Keep& keep, const Score& score) {
    Edges result;
    if (n < 2) return result;
    const int64_t nblocks = (n + T - 1) / T;
    std::vector<Edges> found(static_cast<size_t>(nblocks));
    ExceptionCatcher errors;
#pragma omp parallel num_threads(threads)
    {
        std::vector<int32_t> buf(static_cast<size_t>(T * T));
        // Kept pairs per row of the block, so edges come out ordered by (i, j).
        std::vector<std::vector<std::pair<int64_t, int32_t>>> rows(static_cast<size_t>(T));
#pragma omp for schedule(dynamic, 1)
        for (int64_t I = 0; I < nblocks; ++I) {
            errors.run([&] {
                const int64_t i0 = I * T, ni = std::min(T, n - i0);
                for (auto& r : rows) r.clear();
                for (int64_t j0 = i0; j0 < n; j0 += T) {
                    const int64_t nj = std::min(T, n - j0);
                    tile(i0, ni, j0, nj, buf.data(), T);
                    for (int64_t i = 0; i < ni; ++i) {
                        const int32_t* v = buf.data() + i * T;
                        const int64_t gi = i0 + i;
                        for (int64_t j = std::max<int64_t>(0, gi + 1 - j0); j < nj; ++j) {
                            if (keep(v[j]) && !detail::same_group(opt, gi, j0 + j))
                                rows[i].emplace_back(j0 + j, v[j]);
                        }
                    }
                }
                Edges& e = found[I];
                for (int64_t i = 0; i < ni; ++i) {
                    for (const auto& [j, value] : rows[i]) {
                        e.ij.push_back(i0 + i);
                        e.ij.push_back(j);
                        e.score.push_back(score(value));
                    }
                }
            });
        }
    }
    errors.rethrow();
    size_t total = 0;
    for (const Edges& e : found) total += e.score.size();
    result.ij.reserve(2 * total);
    result.score.reserve(total);
    for (const Edges& e : found) {
        result.ij.insert(result.ij.end(), e.ij.begin(), e.ij.end());
        result.score.insert(result.score.end(), e.score.begin(), e.score.end());
    }
    return result;
}

/// Connected components of the pairs :func:`pairs` would return, written to
/// labels[n] (numbered in order of first appearance). Memory stays O(n): a
/// row keeps one edge per component it reaches. `tile` and `keep` as for
/// :func:`pairs` (tiles here have at most 16 rows and T columns).
template <class Tile, class Keep>
void components(int64_t n, int64_t T, int threads, const PairOptions& opt, const Tile& tile,
                const Keep& keep, int64_t* labels) {
    UnionFind uf(n);
    if (n >= 2) {
        constexpr int64_t R = 16;  // rows per block
        const int64_t words = (n + 63) / 64;
        std::vector<int64_t> root(static_cast<size_t>(n));
        // Rows go in waves of blocks. Within a wave the workers read a snapshot
        // of the roots and keep, per row, one edge per component it reaches
        // (none into its own); the edges are united after the wave. A wave
        // holds at most wave * n edges (2^22 for large n), and is big enough
        // that its barrier costs little.
        const int64_t wave = std::max<int64_t>(R * 4 * threads, (int64_t{1} << 22) / n / R * R);
        for (int64_t start = 0; start < n - 1; start += wave) {
            const int64_t stop = std::min(n, start + wave);
            for (int64_t q = 0; q < n; ++q) root[q] = uf.find(q);
            const int64_t nblocks = (stop - start + R - 1) / R;
            std::vector<std::vector<std::pair<int64_t, int64_t>>> found(
                static_cast<size_t>(nblocks));
            ExceptionCatcher errors;
#pragma omp parallel num_threads(threads)
            {
                std::vector<int32_t> buf(static_cast<size_t>(R * T));
                std::vector<uint64_t> reached(static_cast<size_t>(R * words), 0);  // bitset per row
#pragma omp for schedule(dynamic, 1)
                for (int64_t b = 0; b < nblocks; ++b) {
                    errors.run([&] {
                        const int64_t i0 = start + b * R, ni = std::min(R, stop - i0);
                        std::vector<std::pair<int64_t, int64_t>>& out = found[b];
                        for (int64_t j0 = i0; j0 < n; j0 += T) {
                            const int64_t nj = std::min(T, n - j0);
                            tile(i0, ni, j0, nj, buf.data(), T);
                            for (int64_t i = 0; i < ni; ++i) {
                                const int64_t gi = i0 + i, ri = root[gi];
                                uint64_t* seen = reached.data() + i * words;
                                const int32_t* v = buf.data() + i * T;
                                for (int64_t j = std::max<int64_t>(0, gi + 1 - j0); j < nj; ++j) {
                                    if (!keep(v[j])) continue;
                                    const int64_t gj = j0 + j, r = root[gj];
                                    if (r == ri || (seen[r >> 6] >> (r & 63)) & 1 ||
                                        detail::same_group(opt, gi, gj))
                                        continue;
                                    seen[r >> 6] |= uint64_t{1} << (r & 63);
                                    out.emplace_back(gi, gj);
                                }
                            }
                        }
                        for (const auto& [gi, gj] : out)
                            reached[(gi - i0) * words + (root[gj] >> 6)] = 0;
                    });
                }
            }
            errors.rethrow();
            for (const auto& block : found)
                for (const auto& [i, j] : block) uf.unite(i, j);
        }
    }
    const std::vector<int64_t> out = uf.labels();
    std::copy(out.begin(), out.end(), labels);
}

}  // namespace icas::tiled
