// MinHash kernels (uint32 and uint64, every kernel this CPU runs) and the LSH
// banding search, against brute force.
#include <stdexcept>
#include <string>

#include "check.hpp"
#include "icas/minhash.hpp"
#include "icas/minhash_lsh.hpp"
#include "reference.hpp"

namespace {

std::vector<icas::MinhashKernel> kernels() {
    std::vector<icas::MinhashKernel> out{icas::MinhashKernel::Auto};
    for (const std::string& name : icas::minhash_kernels())
        out.push_back(icas::minhash_kernel_from_name(name));
    return out;
}

// n signatures of k slots around n / cluster random centres: each slot keeps
// the centre's value with probability `keep`, else gets a fresh one. Values
// are drawn from a small range too, so unrelated slots sometimes agree.
template <class T>
std::vector<T> signatures(int64_t n, int64_t k, int64_t cluster, double keep, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution same(keep);
    std::vector<T> centre(static_cast<size_t>(k)), out(static_cast<size_t>(n * k));
    for (int64_t i = 0; i < n; ++i) {
        if (i % cluster == 0)
            for (auto& c : centre) c = static_cast<T>(rng());
        for (int64_t s = 0; s < k; ++s)
            out[i * k + s] = same(rng) ? centre[s] : static_cast<T>(rng() % 4 == 0 ? 7 : rng());
    }
    return out;
}

template <class T>
int64_t equal_slots(const T* a, const T* b, int64_t k) {
    int64_t c = 0;
    for (int64_t s = 0; s < k; ++s) c += a[s] == b[s];
    return c;
}

template <class T>
void check_minhash(uint64_t seed) {
    ref::Coverage cov;
    for (int64_t k : {1, 3, 16, 33, 128}) {
        for (int64_t n : {0, 1, 2, 40, 300}) {
            const auto sigs = signatures<T>(n, k, 6, 0.8, seed + 13 * n + k);
            auto sim = [&](int64_t i, int64_t j) {
                return static_cast<double>(equal_slots(&sigs[i * k], &sigs[j * k], k)) /
                       static_cast<double>(k);
            };
            const int64_t nb = 4;
            const auto other = signatures<T>(nb, k, 2, 0.5, seed + 1);
            const auto groups = ref::random_groups(n, 5, 2);
            for (auto kern : kernels()) {
                for (int threads : ref::kThreadCounts) {
                    if (n <= 40) {
                        std::vector<double> m(static_cast<size_t>(n * n), -1);
                        icas::minhash_matrix(sigs.data(), n, k, m.data(), threads, kern);
                        std::vector<double> c(static_cast<size_t>(n * nb), -1);
                        icas::minhash_cross(sigs.data(), n, other.data(), nb, k, c.data(), threads,
                                            kern);
                        for (int64_t i = 0; i < n; ++i) {
                            for (int64_t j = 0; j < n; ++j) CHECK_EQ(m[i * n + j], sim(i, j));
                            for (int64_t j = 0; j < nb; ++j)
                                CHECK_EQ(c[i * nb + j], static_cast<double>(equal_slots(
                                                            &sigs[i * k], &other[j * k], k)) /
                                                            static_cast<double>(k));
                        }
                    }
                    for (double t : {0.0, 0.5, 0.75, 1.0}) {
                        for (bool use_groups : {false, true}) {
                            const int64_t* g = use_groups ? groups.data() : nullptr;
                            const auto want = ref::threshold_pairs(n, sim, t, g);
                            if (t > 0 && t < 1) cov.add(n, want.size());
                            icas::PairOptions opt = ref::options(t, g, threads);
                            CHECK_EQ(ref::rows(icas::minhash_pairs(sigs.data(), n, k, opt, kern)),
                                     want);
                            std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                            icas::minhash_components(sigs.data(), n, k, opt, labels.data(), kern);
                            CHECK_EQ(labels, ref::components(n, want));
                        }
                    }
                }
            }
        }
    }
    cov.check();
}

template <class T>
void check_lsh(uint64_t seed) {
    ref::Coverage cov;
    for (auto [k, bands, rows] : {std::tuple<int64_t, int64_t, int64_t>{16, 4, 3},
                                  {16, 16, 1},
                                  {16, 1, 16},
                                  {64, 8, 8},
                                  {5, 2, 2}}) {
        for (int64_t n : {0, 1, 2, 60, 400}) {
            const auto sigs = signatures<T>(n, k, 5, 0.85, seed + n * 17 + k + bands);
            const auto groups = ref::block_groups(n, 3);
            auto shares_band = [&](int64_t i, int64_t j) {
                for (int64_t b = 0; b < bands; ++b)
                    if (equal_slots(&sigs[i * k + b * rows], &sigs[j * k + b * rows], rows) == rows)
                        return true;
                return false;
            };
            // Pairs that never collide get -1: below every threshold tested.
            auto sim = [&](int64_t i, int64_t j) {
                if (!shares_band(i, j)) return -1.0;
                return static_cast<double>(equal_slots(&sigs[i * k], &sigs[j * k], k)) /
                       static_cast<double>(k);
            };
            for (double t : {0.0, 0.6, 0.9, 1.0}) {
                for (bool use_groups : {false, true}) {
                    const int64_t* g = use_groups ? groups.data() : nullptr;
                    const auto want = ref::threshold_pairs(n, sim, t, g);
                    if (t > 0 && t < 1) cov.add(n, want.size());
                    for (int threads : ref::kThreadCounts) {
                        icas::PairOptions opt = ref::options(t, g, threads);
                        CHECK_EQ(
                            ref::rows(icas::minhash_lsh_pairs(sigs.data(), n, k, bands, rows, opt)),
                            want);
                        std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                        icas::minhash_lsh_components(sigs.data(), n, k, bands, rows, opt,
                                                     labels.data());
                        CHECK_EQ(labels, ref::components(n, want));
                    }
                }
            }
        }
    }
    cov.check();
}

}  // namespace

TEST(minhash_kernel_names) {
    const auto names = icas::minhash_kernels();
    REQUIRE(!names.empty());
    CHECK_EQ(names.back(), std::string("generic"));
    CHECK_THROWS(std::invalid_argument, icas::minhash_kernel_from_name("bogus"));
    CHECK(icas::minhash_kernel_from_name("auto") == icas::MinhashKernel::Auto);
}

TEST(minhash_min_count_brute) {
    for (int64_t k : {1, 3, 7, 128, 256})
        for (double t : {-1.0, 0.0, 0.1, 1.0 / 3.0, 0.5, 0.9, 1.0, 1.01}) {
            int64_t want = k + 1;
            for (int64_t c = k; c >= 0; --c)
                if (static_cast<double>(c) / static_cast<double>(k) >= t) want = c;
            CHECK_EQ(icas::minhash_min_count(t, k), want);
        }
    CHECK_THROWS(std::invalid_argument, icas::minhash_min_count(0.5, 0));
}

TEST(minhash_uint64_brute) { check_minhash<uint64_t>(1); }
TEST(minhash_uint32_brute) { check_minhash<uint32_t>(2); }
TEST(minhash_lsh_uint64_brute) { check_lsh<uint64_t>(3); }
TEST(minhash_lsh_uint32_brute) { check_lsh<uint32_t>(4); }

TEST(minhash_invalid_sizes) {
    const std::vector<uint64_t> s64(64);
    const std::vector<uint32_t> s32(64);
    std::vector<double> out(64);
    std::vector<int64_t> labels(8);
    icas::PairOptions opt;
    CHECK_THROWS(std::invalid_argument, icas::minhash_matrix(s64.data(), -1, 8, out.data(), 1));
    CHECK_THROWS(std::invalid_argument, icas::minhash_matrix(s32.data(), 2, 0, out.data(), 1));
    CHECK_THROWS(std::invalid_argument,
                 icas::minhash_cross(s64.data(), 2, s64.data(), -1, 8, out.data(), 1));
    CHECK_THROWS(std::invalid_argument, icas::minhash_pairs(s32.data(), 2, 0, opt));
    CHECK_THROWS(std::invalid_argument,
                 icas::minhash_components(s64.data(), -2, 8, opt, labels.data()));
    // LSH: bands, rows >= 1 and bands * rows <= k.
    CHECK_THROWS(std::invalid_argument, icas::minhash_lsh_pairs(s64.data(), 4, 8, 3, 3, opt));
    CHECK_THROWS(std::invalid_argument, icas::minhash_lsh_pairs(s32.data(), 4, 8, 0, 2, opt));
    CHECK_THROWS(std::invalid_argument, icas::minhash_lsh_pairs(s32.data(), 4, 8, 2, 0, opt));
    CHECK_THROWS(std::invalid_argument, icas::minhash_lsh_pairs(s64.data(), -1, 8, 2, 2, opt));
    CHECK_THROWS(std::invalid_argument, icas::minhash_lsh_pairs(s64.data(), 4, 0, 1, 1, opt));
    CHECK_THROWS(std::invalid_argument,
                 icas::minhash_lsh_components(s64.data(), 4, 8, 5, 2, opt, labels.data()));
}
