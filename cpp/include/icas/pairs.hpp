#pragma once
// Generic drivers that turn a per-pair similarity into the three result forms
// (dense matrix, cross matrix, threshold-sparse edges) plus chained components.
// Kernels whose per-pair work is large call these with a functor; kernels that
// need their own tiling (GEMM-like ones) reuse only the edge bookkeeping.
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "icas/parallel.hpp"
#include "icas/union_find.hpp"

namespace icas {

/// Threshold-sparse result: edges (m, 2) row-major with i < j, and scores (m,).
struct Edges {
    std::vector<int64_t> ij;
    std::vector<float> score;
    int64_t size() const { return static_cast<int64_t>(score.size()); }
};

/// Options shared by the threshold forms.
struct PairOptions {
    double threshold = 0.0;           ///< keep pairs with similarity >= threshold
    const int64_t* groups = nullptr;  ///< (n,) or null: skip pairs whose groups are equal
    int n_threads = 0;                ///< 0 default, -1 all cores, k threads
};

namespace detail {
inline bool same_group(const PairOptions& o, int64_t i, int64_t j) {
    return o.groups != nullptr && o.groups[i] == o.groups[j];
}
}  // namespace detail

/// out (n, n) = sim(i, j) for every pair. When `symmetric`, sim is evaluated
/// for i <= j only and mirrored. `sim(i, j)` must be thread-safe.
template <class T, class Sim>
void pairs_matrix(int64_t n, const Sim& sim, bool symmetric, T* out, int n_threads) {
    ExceptionCatcher errors;
    const int threads = resolve_threads(n_threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) {
        errors.run([&] {
            for (int64_t j = symmetric ? i : 0; j < n; ++j) {
                const T v = static_cast<T>(sim(i, j));
                out[i * n + j] = v;
                if (symmetric) out[j * n + i] = v;
            }
        });
    }
    errors.rethrow();
}

/// out (na, nb) = sim(i, j) for i in A, j in B.
template <class T, class Sim>
void pairs_cross(int64_t na, int64_t nb, const Sim& sim, T* out, int n_threads) {
    ExceptionCatcher errors;
    const int threads = resolve_threads(n_threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t i = 0; i < na; ++i) {
        errors.run([&] {
            for (int64_t j = 0; j < nb; ++j) out[i * nb + j] = static_cast<T>(sim(i, j));
        });
    }
    errors.rethrow();
}

/// Every pair i < j with sim(i, j) >= threshold (and different groups, if
/// given), ordered by (i, j) whatever the thread count.
template <class Sim>
Edges pairs_threshold(int64_t n, const Sim& sim, const PairOptions& opt) {
    std::vector<std::vector<std::pair<int64_t, float>>> rows(static_cast<size_t>(n));
    ExceptionCatcher errors;
    const int threads = resolve_threads(opt.n_threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) {
        errors.run([&] {
            for (int64_t j = i + 1; j < n; ++j) {
                if (detail::same_group(opt, i, j)) continue;
                const double s = sim(i, j);
                if (s >= opt.threshold) rows[i].emplace_back(j, static_cast<float>(s));
            }
        });
    }
    errors.rethrow();
    Edges e;
    for (int64_t i = 0; i < n; ++i) {
        for (const auto& [j, s] : rows[i]) {
            e.ij.push_back(i);
            e.ij.push_back(j);
            e.score.push_back(s);
        }
    }
    return e;
}

/// Connected components of the graph of pairs with sim >= threshold, written
/// to labels (n,) in order of first appearance. Pairs whose two items are
/// already joined are skipped: exact, and most pairs of a large cluster are
/// never computed. Rows are processed in blocks; inside a block the workers
/// read a snapshot of the roots, and the found edges are united after it.
template <class Sim>
void pairs_components(int64_t n, const Sim& sim, const PairOptions& opt, int64_t* labels) {
    UnionFind uf(n);
    std::vector<int64_t> root(static_cast<size_t>(n));
    const int threads = resolve_threads(opt.n_threads);
    const int64_t block = std::max<int64_t>(16, 4 * threads);
    for (int64_t start = 0; start < n; start += block) {
        const int64_t stop = std::min(n, start + block);
        for (int64_t k = 0; k < n; ++k) root[k] = uf.find(k);
        std::vector<std::vector<int64_t>> found(static_cast<size_t>(stop - start));
        ExceptionCatcher errors;
#pragma omp parallel num_threads(threads)
        {
            // Roots this row has already reached: further pairs into them are
            // redundant. One flag per root, cleared after each row.
            std::vector<char> reached(static_cast<size_t>(n), 0);
#pragma omp for schedule(dynamic, 1)
            for (int64_t i = start; i < stop; ++i) {
                errors.run([&] {
                    std::vector<int64_t>& row = found[i - start];
                    reached[root[i]] = 1;
                    for (int64_t j = i + 1; j < n; ++j) {
                        if (reached[root[j]] || detail::same_group(opt, i, j)) continue;
                        if (sim(i, j) >= opt.threshold) {
                            row.push_back(j);
                            reached[root[j]] = 1;
                        }
                    }
                    reached[root[i]] = 0;
                    for (int64_t j : row) reached[root[j]] = 0;
                });
            }
        }
        errors.rethrow();
        for (int64_t i = start; i < stop; ++i)
            for (int64_t j : found[i - start]) uf.unite(i, j);
    }
    const std::vector<int64_t> out = uf.labels();
    std::copy(out.begin(), out.end(), labels);
}

}  // namespace icas
