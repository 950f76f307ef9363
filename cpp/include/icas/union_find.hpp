#pragma once
// Disjoint sets over items 0..n-1 (union by size, path halving).
#include <cstdint>
#include <vector>

namespace icas {

class UnionFind {
  public:
    explicit UnionFind(int64_t n);

    /// Root of x's set. Halves the path as it walks (not thread-safe).
    int64_t find(int64_t x);
    /// Root of x's set without modifying the structure: safe to call from
    /// several threads while nobody unites.
    int64_t find_const(int64_t x) const;
    /// Joins the sets of a and b; returns false if they were already one set.
    bool unite(int64_t a, int64_t b);
    int64_t size() const { return static_cast<int64_t>(parent_.size()); }

    /// Component labels (n,) numbered 0, 1, ... in order of first appearance
    /// when scanning items 0..n-1, so they do not depend on the union order.
    std::vector<int64_t> labels();

  private:
    std::vector<int64_t> parent_;
    std::vector<int64_t> size_;
};

/// Connected components of the graph with `n_edges` edges given as pairs
/// `edges[2k], edges[2k+1]` over `n_items` items; writes labels (n_items,)
/// numbered in order of first appearance. Throws std::invalid_argument on an
/// edge endpoint outside [0, n_items).
void connected_components(const int64_t* edges, int64_t n_edges, int64_t n_items, int64_t* labels);

}  // namespace icas
