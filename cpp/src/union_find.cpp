#include "icas/union_find.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace icas {

UnionFind::UnionFind(int64_t n)
    : parent_(static_cast<size_t>(n)), size_(static_cast<size_t>(n), 1) {
    for (int64_t i = 0; i < n; ++i) parent_[i] = i;
}

int64_t UnionFind::find(int64_t x) {
    while (parent_[x] != x) {
        parent_[x] = parent_[parent_[x]];
        x = parent_[x];
    }
    return x;
}

int64_t UnionFind::find_const(int64_t x) const {
    while (parent_[x] != x) x = parent_[x];
    return x;
}

bool UnionFind::unite(int64_t a, int64_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return false;
    if (size_[a] < size_[b]) std::swap(a, b);
    parent_[b] = a;
    size_[a] += size_[b];
    return true;
}

std::vector<int64_t> UnionFind::labels() {
    const int64_t n = size();
    std::vector<int64_t> root_label(static_cast<size_t>(n), -1);
    std::vector<int64_t> out(static_cast<size_t>(n));
    int64_t next = 0;
    for (int64_t i = 0; i < n; ++i) {
        int64_t r = find(i);
        if (root_label[r] < 0) root_label[r] = next++;
        out[i] = root_label[r];
    }
    return out;
}

void connected_components(const int64_t* edges, int64_t n_edges, int64_t n_items, int64_t* labels) {
    if (n_items < 0) throw std::invalid_argument("n_items must be >= 0");
    UnionFind uf(n_items);
    for (int64_t k = 0; k < n_edges; ++k) {
        const int64_t a = edges[2 * k], b = edges[2 * k + 1];
        if (a < 0 || a >= n_items || b < 0 || b >= n_items) {
            throw std::invalid_argument(
                "edges[" + std::to_string(k) + "] = (" + std::to_string(a) + ", " +
                std::to_string(b) + ") is outside [0, n_items=" + std::to_string(n_items) + ")");
        }
        uf.unite(a, b);
    }
    const std::vector<int64_t> out = uf.labels();
    for (int64_t i = 0; i < n_items; ++i) labels[i] = out[i];
}

}  // namespace icas
