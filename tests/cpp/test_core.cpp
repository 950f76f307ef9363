// Union-find, the generic pair drivers (pairs.hpp), the tile drivers
// (tiled.hpp), the per-pair formulas (pair_math.hpp) and thread resolution.
#include <cmath>
#include <stdexcept>

#include "check.hpp"
#include "icas/pair_math.hpp"
#include "icas/pairs.hpp"
#include "icas/parallel.hpp"
#include "icas/tiled.hpp"
#include "icas/union_find.hpp"
#include "reference.hpp"

namespace {

// A symmetric pseudo-random similarity in [0, 1) with a few strong pairs.
double toy_sim(int64_t i, int64_t j) {
    if (i > j) std::swap(i, j);
    uint64_t h = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull ^
                 static_cast<uint64_t>(j) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return static_cast<double>(h % 1000) / 1000.0;
}

std::vector<ref::Edge> random_edges(int64_t n, int64_t m, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<ref::Edge> e;
    for (int64_t k = 0; k < m && n > 0; ++k)
        e.push_back({static_cast<int64_t>(rng() % n), static_cast<int64_t>(rng() % n), 0.0f});
    return e;
}

}  // namespace

TEST(union_find_against_dfs) {
    for (int64_t n : {0, 1, 2, 3, 10, 200}) {
        for (int64_t m : {0, 1, 5, 50, 150}) {
            const auto edges = random_edges(n, n == 0 ? 0 : m, static_cast<uint64_t>(n * 1000 + m));
            std::vector<int64_t> flat;
            for (const auto& e : edges) {
                flat.push_back(e.i);
                flat.push_back(e.j);
            }
            std::vector<int64_t> labels(static_cast<size_t>(n), -7);
            icas::connected_components(flat.data(), static_cast<int64_t>(edges.size()), n,
                                       labels.data());
            CHECK_EQ(labels, ref::components(n, edges));

            icas::UnionFind uf(n);
            int64_t merges = 0;
            for (const auto& e : edges) merges += uf.unite(e.i, e.j);
            const auto l = uf.labels();
            CHECK_EQ(l, labels);
            int64_t count = 0;
            for (int64_t v : l) count = std::max(count, v + 1);
            CHECK_EQ(count, n - merges);  // every successful unite removes one set
            for (int64_t i = 0; i < n; ++i) CHECK_EQ(uf.find(i), uf.find_const(i));
        }
    }
}

TEST(union_find_labels_first_appearance) {
    icas::UnionFind uf(6);
    uf.unite(5, 4);
    uf.unite(2, 0);
    CHECK(!uf.unite(0, 2));
    CHECK_EQ(uf.labels(), (std::vector<int64_t>{0, 1, 0, 2, 3, 3}));
}

TEST(connected_components_invalid) {
    std::vector<int64_t> labels(3);
    const int64_t bad_hi[] = {0, 3};
    const int64_t bad_lo[] = {-1, 0};
    CHECK_THROWS(std::invalid_argument, icas::connected_components(bad_hi, 1, 3, labels.data()));
    CHECK_THROWS(std::invalid_argument, icas::connected_components(bad_lo, 1, 3, labels.data()));
    CHECK_THROWS(std::invalid_argument, icas::connected_components(nullptr, 0, -1, labels.data()));
}

TEST(resolve_threads) {
    CHECK(icas::resolve_threads(0) >= 1);
    CHECK(icas::resolve_threads(-1) >= 1);
    CHECK(icas::resolve_threads(1) == 1);
    // Capped, never zero or absurd.
    CHECK(icas::resolve_threads(1000000) >= 1);
    CHECK(icas::resolve_threads(1000000) < 1000000);
}

TEST(exception_catcher_rethrows_first) {
    icas::ExceptionCatcher c;
    c.run([] {});
    c.rethrow();  // nothing caught: no throw
    c.run([] { throw std::invalid_argument("first"); });
    c.run([] { throw std::runtime_error("second"); });
    CHECK_THROWS(std::invalid_argument, c.rethrow());
}

TEST(pairs_matrix_and_cross) {
    for (int64_t n : {0, 1, 2, 17}) {
        for (int threads : ref::kThreadCounts) {
            std::vector<double> sym(static_cast<size_t>(n * n), -1), full(sym);
            icas::pairs_matrix<double>(n, toy_sim, true, sym.data(), threads);
            auto asym = [](int64_t i, int64_t j) { return static_cast<double>(i * 100 + j); };
            icas::pairs_matrix<double>(n, asym, false, full.data(), threads);
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    CHECK_EQ(sym[i * n + j], toy_sim(i, j));
                    CHECK_EQ(full[i * n + j], asym(i, j));
                }
            const int64_t nb = 5;
            std::vector<float> cross(static_cast<size_t>(n * nb), -1);
            icas::pairs_cross<float>(n, nb, asym, cross.data(), threads);
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < nb; ++j)
                    CHECK_EQ(cross[i * nb + j], static_cast<float>(asym(i, j)));
        }
    }
}

TEST(pairs_threshold_and_components) {
    ref::Coverage cov;
    for (int64_t n : {0, 1, 2, 3, 40, 150}) {
        const auto groups = ref::random_groups(n, 7, 11);
        for (double t : {0.0, 0.5, 0.97, 1.0}) {
            for (bool use_groups : {false, true}) {
                const int64_t* g = use_groups ? groups.data() : nullptr;
                const auto want = ref::threshold_pairs(n, toy_sim, t, g);
                if (t > 0 && t < 1) cov.add(n, want.size());
                const auto want_labels = ref::components(n, want);
                for (int threads : ref::kThreadCounts) {
                    icas::PairOptions opt = ref::options(t, g, threads);
                    CHECK_EQ(ref::rows(icas::pairs_threshold(n, toy_sim, opt)), want);
                    std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                    icas::pairs_components(n, toy_sim, opt, labels.data());
                    CHECK_EQ(labels, want_labels);
                }
            }
        }
    }
    cov.check();
}

TEST(pairs_drivers_propagate_exceptions) {
    auto bad = [](int64_t i, int64_t j) -> double {
        if (i == 3 && j == 7) throw std::invalid_argument("bad pair");
        return 1.0;
    };
    icas::PairOptions opt;
    opt.threshold = 2.0;  // nothing passes: every pair is evaluated
    opt.n_threads = 2;
    std::vector<double> m(100);
    CHECK_THROWS(std::invalid_argument, icas::pairs_matrix<double>(10, bad, true, m.data(), 2));
    CHECK_THROWS(std::invalid_argument, icas::pairs_cross<double>(10, 10, bad, m.data(), 2));
    CHECK_THROWS(std::invalid_argument, icas::pairs_threshold(10, bad, opt));
    std::vector<int64_t> labels(10);
    CHECK_THROWS(std::invalid_argument, icas::pairs_components(10, bad, opt, labels.data()));
}

// tiled.hpp with a toy tile: value(i, j) = integer "distance" in [0, 100).
TEST(tiled_pairs_and_components) {
    auto value = [](int64_t i, int64_t j) { return static_cast<int32_t>(toy_sim(i, j) * 100); };
    auto tile = [&](int64_t i0, int64_t ni, int64_t j0, int64_t nj, int32_t* out, int64_t ld) {
        for (int64_t i = 0; i < ni; ++i)
            for (int64_t j = 0; j < nj; ++j) out[i * ld + j] = value(i0 + i, j0 + j);
    };
    auto score = [](int32_t v) { return 1.0f - static_cast<float>(v) / 100.0f; };
    for (int64_t n : {0, 1, 2, 5, 33, 130}) {
        const auto groups = ref::block_groups(n, 3);
        for (int32_t max_v : {-1, 0, 4, 30, 99}) {
            auto keep = [&](int32_t v) { return v <= max_v; };
            for (bool use_groups : {false, true}) {
                const int64_t* g = use_groups ? groups.data() : nullptr;
                std::vector<ref::Edge> want;
                for (int64_t i = 0; i < n; ++i)
                    for (int64_t j = i + 1; j < n; ++j)
                        if (value(i, j) <= max_v && !(g && g[i] == g[j]))
                            want.push_back({i, j, score(value(i, j))});
                const auto want_labels = ref::components(n, want);
                for (int64_t T : {1, 7, 16, 64}) {
                    for (int threads : ref::kThreadCounts) {
                        icas::PairOptions opt;
                        opt.groups = g;
                        opt.n_threads = threads;
                        CHECK_EQ(
                            ref::rows(icas::tiled::pairs(n, T, threads, opt, tile, keep, score)),
                            want);
                        std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                        icas::tiled::components(n, T, threads, opt, tile, keep, labels.data());
                        CHECK_EQ(labels, want_labels);
                    }
                }
            }
        }
    }
}

TEST(pair_math_formulas) {
    namespace pm = icas::pair_math;
    // tm_score: 1 - min(sq / (|a| |b|), 1), symmetric, 0 with a zero norm.
    for (int64_t na : {0, 1, 50, 1000})
        for (int64_t nb : {0, 1, 60, 900})
            for (int64_t dot : {int64_t{0}, std::min(na, nb) / 2, std::min(na, nb)}) {
                const double ra = std::sqrt(static_cast<double>(na));
                const double rb = std::sqrt(static_cast<double>(nb));
                const double s = pm::tm_score(na, nb, ra, rb, dot);
                CHECK_EQ(s, pm::tm_score(nb, na, rb, ra, dot));
                CHECK(s >= 0.0 && s <= 1.0);
                const double sq = static_cast<double>(na + nb - 2 * dot);
                const double want =
                    (na == 0 || nb == 0) ? 0.0 : 1.0 - std::min(sq / (ra * rb), 1.0);
                CHECK_NEAR(s, want, 1e-12);
            }
    CHECK_EQ(pm::tm_score(100, 100, 10.0, 10.0, 100), 1.0);  // identical images
    CHECK_EQ(pm::tm_score(0, 0, 0.0, 0.0, 0), 0.0);          // two black images

    CHECK_EQ(pm::hamming_score(0, 64), 1.0);
    CHECK_EQ(pm::hamming_score(64, 64), 0.0);
    CHECK_EQ(pm::hamming_score(16, 64), 0.75);
    CHECK_EQ(pm::minhash_score(0, 128), 0.0);
    CHECK_EQ(pm::minhash_score(128, 128), 1.0);
    CHECK_EQ(pm::minhash_score(3, 7), 3.0 / 7.0);

    // SSIM of a window against itself is exactly 1 for any window sums.
    for (int32_t sx : {0, 1, 300, 49 * 255})
        for (int32_t extra : {0, 5, 1000}) {
            const int32_t sxx =
                std::min<int64_t>((int64_t{sx} * sx + extra) / 49 + 1, int64_t{49} * 255 * 255);
            const int32_t cov = 49 * sxx - sx * sx;
            if (cov < 0) continue;
            const float q = pm::ssim_q(sx), v = pm::ssim_v(sx, sxx);
            CHECK_EQ(pm::ssim_term(sx * sx, cov, q, q, v, v), 1.0f);
        }
    // A padded window (v = +inf) gives 0.
    const float inf = std::numeric_limits<float>::infinity();
    CHECK_EQ(pm::ssim_term(10, 10, pm::ssim_q(3), pm::ssim_q(4), inf, pm::ssim_v(4, 1)), 0.0f);

    // ORB ratio rule against the floating-point statement of it.
    CHECK_EQ(pm::orb_ratio(0, 0, 0), 0.0);
    CHECK_EQ(pm::orb_ratio(0, 3, 0), 1.0);
    CHECK_EQ(pm::orb_ratio(1, 4, 10), 0.25);
    for (int64_t max_d = 0; max_d <= 256; ++max_d)
        for (int64_t d = 0; d <= max_d; ++d)
            CHECK_EQ(pm::orb_good(d, max_d),
                     static_cast<double>(d) < 0.75 * static_cast<double>(max_d));
}
