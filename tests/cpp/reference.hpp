#pragma once
// Brute-force references and random inputs shared by the C++ tests. These
// are written independently of the kernels (plain loops, no union-find, bit
// by bit popcounts) so a test compares two different computations.
#include <cmath>
#include <cstdint>
#include <functional>
#include <ostream>
#include <random>
#include <utility>
#include <vector>

#include "check.hpp"
#include "icas/pairs.hpp"

namespace ref {

/// Thread counts every kernel must give identical results for.
inline const int kThreadCounts[] = {1, 2, 4};

/// Bits set in x, one at a time.
inline int popcount(uint8_t x) {
    int c = 0;
    for (int b = 0; b < 8; ++b) c += (x >> b) & 1;
    return c;
}

inline int64_t hamming(const uint8_t* a, const uint8_t* b, int64_t n_bytes) {
    int64_t d = 0;
    for (int64_t k = 0; k < n_bytes; ++k) d += popcount(static_cast<uint8_t>(a[k] ^ b[k]));
    return d;
}

/// Edges as (i, j, score) rows, for comparing an icas::Edges in one go.
struct Edge {
    int64_t i, j;
    float score;
    bool operator==(const Edge& o) const { return i == o.i && j == o.j && score == o.score; }
};

inline std::ostream& operator<<(std::ostream& s, const Edge& e) {
    return s << "(" << e.i << "," << e.j << ":" << e.score << ")";
}

inline std::vector<Edge> rows(const icas::Edges& e) {
    std::vector<Edge> out;
    for (int64_t k = 0; k < e.size(); ++k)
        out.push_back({e.ij[2 * k], e.ij[2 * k + 1], e.score[k]});
    return out;
}

/// Every pair i < j of different groups with sim(i, j) >= threshold, in (i, j)
/// order, with float scores.
inline std::vector<Edge> threshold_pairs(int64_t n,
                                         const std::function<double(int64_t, int64_t)>& sim,
                                         double threshold, const int64_t* groups = nullptr) {
    std::vector<Edge> out;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = i + 1; j < n; ++j) {
            if (groups && groups[i] == groups[j]) continue;
            const double s = sim(i, j);
            if (s >= threshold) out.push_back({i, j, static_cast<float>(s)});
        }
    return out;
}

/// Guards against a test that cannot fail: over a test's cases, some pairs
/// must pass the threshold and some must not.
struct Coverage {
    int64_t kept = 0, pairs = 0;
    void add(int64_t n, size_t edges) {
        kept += static_cast<int64_t>(edges);
        pairs += n * (n - 1) / 2;
    }
    void check() const {
        CHECK(kept > 0);
        CHECK(kept < pairs);
    }
};

/// Component labels of the graph (n items, edges) by depth-first search,
/// numbered in order of first appearance.
inline std::vector<int64_t> components(int64_t n, const std::vector<Edge>& edges) {
    std::vector<std::vector<int64_t>> adj(static_cast<size_t>(n));
    for (const Edge& e : edges) {
        adj[e.i].push_back(e.j);
        adj[e.j].push_back(e.i);
    }
    std::vector<int64_t> label(static_cast<size_t>(n), -1);
    int64_t next = 0;
    for (int64_t s = 0; s < n; ++s) {
        if (label[s] >= 0) continue;
        std::vector<int64_t> stack{s};
        label[s] = next;
        while (!stack.empty()) {
            const int64_t v = stack.back();
            stack.pop_back();
            for (int64_t w : adj[v])
                if (label[w] < 0) {
                    label[w] = next;
                    stack.push_back(w);
                }
        }
        ++next;
    }
    return label;
}

/// Clustered binary codes: `n` codes of n_bytes, drawn around n / cluster
/// random centres with each bit flipped with probability `flip`.
inline std::vector<uint8_t> clustered_codes(int64_t n, int64_t n_bytes, int64_t cluster,
                                            double flip, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    std::bernoulli_distribution flip_bit(flip);
    std::vector<uint8_t> centre(static_cast<size_t>(n_bytes));
    std::vector<uint8_t> out(static_cast<size_t>(n * n_bytes));
    for (int64_t i = 0; i < n; ++i) {
        if (i % cluster == 0)
            for (auto& c : centre) c = static_cast<uint8_t>(byte(rng));
        for (int64_t k = 0; k < n_bytes; ++k) {
            uint8_t v = centre[k];
            for (int b = 0; b < 8; ++b)
                if (flip_bit(rng)) v ^= static_cast<uint8_t>(1u << b);
            out[i * n_bytes + k] = v;
        }
    }
    return out;
}

/// Groups (n,) of `per` consecutive items each.
inline std::vector<int64_t> block_groups(int64_t n, int64_t per) {
    std::vector<int64_t> g(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) g[i] = i / per;
    return g;
}

/// Random groups (n,) in [0, k).
inline std::vector<int64_t> random_groups(int64_t n, int64_t k, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int64_t> g(static_cast<size_t>(n));
    for (auto& v : g) v = static_cast<int64_t>(rng() % static_cast<uint64_t>(k));
    return g;
}

/// A threshold near `t` that no value lies within `eps` of, so a kernel
/// comparing in float and a reference comparing in double agree on every pair.
inline double safe_threshold(const std::vector<double>& values, double t, double eps = 1e-5) {
    for (int tries = 0; tries < 1000; ++tries) {
        bool ok = true;
        for (double v : values)
            if (std::abs(v - t) < eps) ok = false;
        if (ok) return t;
        t += 3 * eps;
    }
    return t;
}

/// The options of a threshold form: threshold t, optional groups (n,), threads.
inline icas::PairOptions options(double t, const int64_t* groups, int threads) {
    icas::PairOptions opt;
    opt.threshold = t;
    opt.groups = groups;
    opt.n_threads = threads;
    return opt;
}

}  // namespace ref
