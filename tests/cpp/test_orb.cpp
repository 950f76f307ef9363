// ORB matching: cross-checked brute-force matching and the ratio rule written
// out here, against the kernels (vector and portable popcount), every form,
// and the index candidates against a direct count of shared descriptors.
#include <algorithm>
#include <stdexcept>

#include "check.hpp"
#include "icas/orb_match.hpp"
#include "icas/pair_math.hpp"
#include "reference.hpp"

namespace {

constexpr int64_t B = icas::kOrbBytes;

struct Descriptors {
    std::vector<uint8_t> rows;
    std::vector<int64_t> offsets;
    icas::OrbImages view() const {
        icas::OrbImages v;
        v.descriptors = rows.data();
        v.offsets = offsets.data();
        v.n = static_cast<int64_t>(offsets.size()) - 1;
        v.total = offsets.back();
        return v;
    }
};

// n images; image i has a varying count of descriptors (image 1 none), pairs
// of images (2k, 2k + 1) share noisy copies of a common pool, so some image
// pairs match well, and duplicated rows make distance ties.
Descriptors make(int64_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    Descriptors d;
    d.offsets.push_back(0);
    std::vector<uint8_t> pool;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t count = i == 1 ? 0 : static_cast<int64_t>(rng() % 24) + 1;
        if (i % 2 == 0) pool = ref::clustered_codes(24, B, 1000, 0.0, rng());
        for (int64_t r = 0; r < count; ++r) {
            const int64_t kind = static_cast<int64_t>(rng() % 4);
            for (int64_t k = 0; k < B; ++k) {
                uint8_t v = kind == 3 ? static_cast<uint8_t>(rng()) : pool[(r % 24) * B + k];
                if (kind == 1 && rng() % 4 == 0) v ^= static_cast<uint8_t>(1u << (rng() % 8));
                d.rows.push_back(v);
            }
            if (kind == 2 && r + 1 < count) {  // an exact duplicate row
                d.rows.insert(d.rows.end(), d.rows.end() - B, d.rows.end());
                ++r;
            }
        }
        d.offsets.push_back(static_cast<int64_t>(d.rows.size()) / B);
    }
    return d;
}

struct Match {
    int64_t q, t;
    int32_t d;
};

// Mutual first nearest neighbours (ties to the lower index), in query order.
std::vector<Match> cross_check(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb) {
    auto dist = [&](int64_t q, int64_t t) { return ref::hamming(a + q * B, b + t * B, B); };
    std::vector<Match> out;
    for (int64_t q = 0; q < na; ++q) {
        int64_t best_t = -1;
        for (int64_t t = 0; t < nb; ++t)
            if (best_t < 0 || dist(q, t) < dist(q, best_t)) best_t = t;
        if (best_t < 0) continue;
        int64_t best_q = -1;
        for (int64_t q2 = 0; q2 < na; ++q2)
            if (best_q < 0 || dist(q2, best_t) < dist(best_q, best_t)) best_q = q2;
        if (best_q == q) out.push_back({q, best_t, static_cast<int32_t>(dist(q, best_t))});
    }
    return out;
}

double similarity(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb) {
    const auto m = cross_check(a, na, b, nb);
    if (m.empty()) return 0.0;
    int64_t max_d = 0;
    for (const Match& x : m) max_d = std::max<int64_t>(max_d, x.d);
    if (max_d == 0) return 1.0;
    int64_t good = 0;
    for (const Match& x : m) good += static_cast<double>(x.d) < 0.75 * static_cast<double>(max_d);
    return static_cast<double>(good) / static_cast<double>(m.size());
}

// Runs body once with the automatic kernel and once forcing the portable one.
template <class F>
void each_kernel(const F& body) {
    for (bool portable : {false, true}) {
        icas::orb_force_portable(portable);
        body();
    }
    icas::orb_force_portable(false);
}

}  // namespace

TEST(orb_matches_and_similarity) {
    const Descriptors d = make(8, 1);
    const auto v = d.view();
    each_kernel([&] {
        for (int64_t i = 0; i < v.n; ++i)
            for (int64_t j = 0; j < v.n; ++j) {
                std::vector<int64_t> q, t;
                std::vector<int32_t> dist;
                icas::orb_matches(v.rows(i), v.count(i), v.rows(j), v.count(j), q, t, dist);
                const auto want = cross_check(v.rows(i), v.count(i), v.rows(j), v.count(j));
                REQUIRE_EQ(q.size(), want.size());
                for (size_t k = 0; k < want.size(); ++k) {
                    CHECK_EQ(q[k], want[k].q);
                    CHECK_EQ(t[k], want[k].t);
                    CHECK_EQ(dist[k], want[k].d);
                }
                const double s = icas::orb_similarity(v.rows(i), v.count(i), v.rows(j), v.count(j));
                CHECK_EQ(s, similarity(v.rows(i), v.count(i), v.rows(j), v.count(j)));
                CHECK_EQ(s, icas::orb_similarity(v.rows(j), v.count(j), v.rows(i), v.count(i)));
                CHECK(s >= 0.0 && s <= 1.0);
            }
    });
}

TEST(orb_forms_against_brute) {
    ref::Coverage cov;
    for (int64_t n : {0, 1, 2, 3, 14}) {
        const Descriptors d = make(n, 10 + n);
        const auto v = d.view();
        auto sim = [&](int64_t i, int64_t j) {
            return similarity(v.rows(i), v.count(i), v.rows(j), v.count(j));
        };
        const auto groups = ref::block_groups(n, 3);
        const Descriptors other = make(3, 77);
        const auto w = other.view();
        each_kernel([&] {
            for (int threads : ref::kThreadCounts) {
                std::vector<double> m(static_cast<size_t>(n * n), -1);
                icas::orb_matrix(v, m.data(), threads);
                std::vector<double> c(static_cast<size_t>(n * w.n), -1);
                icas::orb_cross(v, w, c.data(), threads);
                for (int64_t i = 0; i < n; ++i) {
                    for (int64_t j = 0; j < n; ++j)
                        CHECK_EQ(m[i * n + j], i == j ? (v.count(i) > 0 ? 1.0 : 0.0) : sim(i, j));
                    for (int64_t j = 0; j < w.n; ++j)
                        CHECK_EQ(c[i * w.n + j],
                                 similarity(v.rows(i), v.count(i), w.rows(j), w.count(j)));
                }
                for (double t : {0.0, 0.3, 0.6, 1.0}) {
                    for (bool use_groups : {false, true}) {
                        const int64_t* g = use_groups ? groups.data() : nullptr;
                        const auto want = ref::threshold_pairs(n, sim, t, g);
                        if (t > 0 && t < 1) cov.add(n, want.size());
                        icas::PairOptions opt = ref::options(t, g, threads);
                        CHECK_EQ(ref::rows(icas::orb_pairs(v, opt)), want);
                        std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                        icas::orb_components(v, opt, labels.data());
                        CHECK_EQ(labels, ref::components(n, want));
                    }
                }
            }
        });
    }
    cov.check();
}

TEST(orb_index_candidates_against_brute) {
    ref::Coverage cov;
    for (int64_t n : {0, 1, 2, 12}) {
        const Descriptors d = make(n, 40 + n);
        const auto v = d.view();
        const auto groups = ref::block_groups(n, 4);
        for (int radius : {0, 5, 16, 40}) {
            for (int min_shared : {1, 2, 4}) {
                icas::OrbCandidates how;
                how.index = true;
                how.radius = radius;
                how.min_shared = min_shared;
                auto shared = [&](int64_t i, int64_t j) {
                    int64_t count = 0;
                    for (int64_t p = 0; p < v.count(i); ++p)
                        for (int64_t q = 0; q < v.count(j); ++q)
                            count +=
                                ref::hamming(v.rows(i) + p * B, v.rows(j) + q * B, B) <= radius;
                    return count;
                };
                for (bool use_groups : {false, true}) {
                    const int64_t* g = use_groups ? groups.data() : nullptr;
                    std::vector<int64_t> want;
                    for (int64_t i = 0; i < n; ++i)
                        for (int64_t j = i + 1; j < n; ++j)
                            if (!(g && g[i] == g[j]) && shared(i, j) >= min_shared) {
                                want.push_back(i);
                                want.push_back(j);
                            }
                    auto sim = [&](int64_t i, int64_t j) {
                        for (size_t k = 0; k < want.size(); k += 2)
                            if (want[k] == i && want[k + 1] == j)
                                return similarity(v.rows(i), v.count(i), v.rows(j), v.count(j));
                        return -1.0;
                    };
                    for (int threads : ref::kThreadCounts) {
                        icas::PairOptions opt;
                        opt.groups = g;
                        opt.n_threads = threads;
                        CHECK_EQ(icas::orb_index_candidates(v, how, opt), want);
                        cov.add(n, want.size() / 2);
                        opt.threshold = 0.3;
                        const auto want_pairs = ref::threshold_pairs(n, sim, 0.3, nullptr);
                        CHECK_EQ(ref::rows(icas::orb_pairs(v, opt, how)), want_pairs);
                        CHECK_EQ(ref::rows(icas::orb_pairs_among(
                                     v, want.data(), static_cast<int64_t>(want.size() / 2), opt)),
                                 want_pairs);
                        std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                        icas::orb_components(v, opt, labels.data(), how);
                        CHECK_EQ(labels, ref::components(n, want_pairs));
                    }
                }
            }
        }
    }
    cov.check();
}

TEST(orb_invalid) {
    const int64_t good[] = {0, 2, 2, 5};
    icas::check_orb_offsets(good, 4, 5, "offsets");
    const int64_t start[] = {1, 2, 5};
    const int64_t down[] = {0, 3, 2, 5};
    CHECK_THROWS(std::invalid_argument, icas::check_orb_offsets(start, 3, 5, "offsets"));
    CHECK_THROWS(std::invalid_argument, icas::check_orb_offsets(down, 4, 5, "offsets"));
    CHECK_THROWS(std::invalid_argument, icas::check_orb_offsets(good, 4, 6, "offsets"));
    CHECK_THROWS(std::invalid_argument, icas::check_orb_offsets(good, 0, 0, "offsets"));
    const Descriptors d = make(4, 3);
    icas::OrbCandidates how;
    how.index = true;
    how.radius = -1;
    icas::PairOptions opt;
    CHECK_THROWS(std::invalid_argument, icas::orb_index_candidates(d.view(), how, opt));
    how.radius = 257;
    CHECK_THROWS(std::invalid_argument, icas::orb_pairs(d.view(), opt, how));
    how.radius = 16;
    how.min_shared = 0;
    CHECK_THROWS(std::invalid_argument, icas::orb_index_candidates(d.view(), how, opt));
}

TEST(orb_kernel_name) {
    const std::string k = icas::orb_kernel();
    CHECK(k == "avx512-vpopcntdq" || k == "portable");
    icas::orb_force_portable(true);
    CHECK_EQ(icas::orb_kernel(), std::string("portable"));
    icas::orb_force_portable(false);
    CHECK_EQ(icas::orb_kernel(), k);
}
