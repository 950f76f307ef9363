#pragma once
// Shared by the candidate searches (multi-index hashing, MinHash LSH): found
// pairs arrive in any order from the worker threads; they are put in the
// (i, j) order of the brute-force kernels with a counting sort on i and a
// sort of each row, so the result does not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "icas/pairs.hpp"

namespace icas::detail {

/// A verified pair i < j and its exact value (a distance or a count).
struct Hit {
    uint32_t i;
    uint32_t j;
    int32_t value;
};

/// Edges of every hit (each pair at most once), ordered by (i, j), with
/// scores score(value). Frees the chunks as it goes.
template <class Score>
Edges edges_from_hits(std::vector<std::vector<Hit>>& chunks, int64_t n, const Score& score,
                      int threads) {
    std::vector<int64_t> start(static_cast<size_t>(n) + 1, 0);
    for (const auto& c : chunks)
        for (const Hit& h : c) ++start[h.i + 1];
    for (int64_t i = 0; i < n; ++i) start[i + 1] += start[i];
    const int64_t m = start[n];
    std::vector<std::pair<uint32_t, int32_t>> row(static_cast<size_t>(m));
    {
        std::vector<int64_t> fill(start.begin(), start.end() - 1);
        for (auto& c : chunks) {
            for (const Hit& h : c) row[fill[h.i]++] = {h.j, h.value};
            std::vector<Hit>().swap(c);
        }
    }
    Edges e;
    e.ij.resize(static_cast<size_t>(2 * m));
    e.score.resize(static_cast<size_t>(m));
#pragma omp parallel for schedule(dynamic, 1024) num_threads(threads) if (m >= (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
        const int64_t b = start[i], f = start[i + 1];
        if (f - b > 1) std::sort(row.begin() + b, row.begin() + f);
        for (int64_t p = b; p < f; ++p) {
            e.ij[2 * p] = i;
            e.ij[2 * p + 1] = row[p].first;
            e.score[p] = score(row[p].second);
        }
    }
    return e;
}

}  // namespace icas::detail
