// Hamming kernels (every popcount level this CPU runs) and the multi-index
// hashing search, against bit-by-bit brute force.
#include <stdexcept>
#include <string>

#include "check.hpp"
#include "icas/hamming.hpp"
#include "icas/mih.hpp"
#include "reference.hpp"

namespace {

std::vector<icas::HammingKernel> kernels() {
    std::vector<icas::HammingKernel> out{icas::HammingKernel::Auto};
    for (const std::string& name : icas::hamming_kernels())
        out.push_back(icas::hamming_kernel_from_name(name));
    return out;
}

std::function<double(int64_t, int64_t)> hamming_sim(const std::vector<uint8_t>& codes,
                                                    int64_t n_bytes) {
    return [&codes, n_bytes](int64_t i, int64_t j) {
        const int64_t d = ref::hamming(&codes[i * n_bytes], &codes[j * n_bytes], n_bytes);
        return 1.0 - static_cast<double>(d) / static_cast<double>(8 * n_bytes);
    };
}

}  // namespace

TEST(hamming_kernel_names) {
    const auto names = icas::hamming_kernels();
    REQUIRE(!names.empty());
    CHECK_EQ(names.back(), std::string("portable"));
    CHECK_THROWS(std::invalid_argument, icas::hamming_kernel_from_name("bogus"));
    CHECK(icas::hamming_kernel_from_name("auto") == icas::HammingKernel::Auto);
    for (const char* all : {"avx512", "avx2", "popcnt"}) {
        bool listed = false;
        for (const auto& n : names) listed |= n == all;
        if (!listed) CHECK_THROWS(std::invalid_argument, icas::hamming_kernel_from_name(all));
    }
}

TEST(hamming_max_distance_brute) {
    for (int64_t bits : {1, 7, 64, 256, 1000})
        for (double t : {-0.5, 0.0, 0.1, 0.5, 0.75, 0.9, 0.999, 1.0, 1.5}) {
            int64_t want = -1;
            for (int64_t d = 0; d <= bits; ++d)
                if (1.0 - static_cast<double>(d) / static_cast<double>(bits) >= t) want = d;
            CHECK_EQ(icas::hamming_max_distance(t, bits), want);
        }
    // The float rounding of the threshold: exactly at a representable step.
    for (int64_t bits : {64, 100, 256})
        for (int64_t d = 0; d <= bits; ++d) {
            const double t = 1.0 - static_cast<double>(d) / static_cast<double>(bits);
            CHECK_EQ(icas::hamming_max_distance(t, bits), d);
        }
    CHECK_THROWS(std::invalid_argument, icas::hamming_max_distance(0.5, 0));
}

TEST(hamming_matrix_cross_brute) {
    for (int64_t n_bytes : {1, 3, 8, 32, 33, 100}) {
        for (int64_t n : {0, 1, 2, 37}) {
            const auto codes = ref::clustered_codes(n, n_bytes, 4, 0.1, n * 7 + n_bytes);
            const int64_t nb = 5;
            const auto other = ref::clustered_codes(nb, n_bytes, 2, 0.3, 99 + n_bytes);
            for (auto k : kernels()) {
                for (int threads : ref::kThreadCounts) {
                    std::vector<int32_t> m(static_cast<size_t>(n * n), -1);
                    icas::hamming_matrix(codes.data(), n, n_bytes, m.data(), threads, k);
                    std::vector<int32_t> c(static_cast<size_t>(n * nb), -1);
                    icas::hamming_cross(codes.data(), n, other.data(), nb, n_bytes, c.data(),
                                        threads, k);
                    for (int64_t i = 0; i < n; ++i) {
                        for (int64_t j = 0; j < n; ++j)
                            CHECK_EQ(m[i * n + j], ref::hamming(&codes[i * n_bytes],
                                                                &codes[j * n_bytes], n_bytes));
                        for (int64_t j = 0; j < nb; ++j)
                            CHECK_EQ(c[i * nb + j], ref::hamming(&codes[i * n_bytes],
                                                                 &other[j * n_bytes], n_bytes));
                    }
                }
            }
        }
    }
}

TEST(hamming_pairs_components_brute) {
    ref::Coverage cov;
    // 700 codes of 8 bytes: enough work that the kernels really use threads.
    for (auto [n, n_bytes] :
         {std::pair<int64_t, int64_t>{0, 8}, {1, 8}, {2, 8}, {45, 3}, {130, 32}, {700, 8}}) {
        const auto codes = ref::clustered_codes(n, n_bytes, 5, 0.08, n + 31 * n_bytes);
        const auto sim = hamming_sim(codes, n_bytes);
        const auto groups = ref::random_groups(n, 9, 5);
        for (double t : {0.0, 0.8, 0.9, 1.0}) {
            for (bool use_groups : {false, true}) {
                const int64_t* g = use_groups ? groups.data() : nullptr;
                const auto want = ref::threshold_pairs(n, sim, t, g);
                if (t > 0 && t < 1) cov.add(n, want.size());
                const auto want_labels = ref::components(n, want);
                for (auto k : kernels()) {
                    for (int threads : ref::kThreadCounts) {
                        icas::PairOptions opt = ref::options(t, g, threads);
                        CHECK_EQ(ref::rows(icas::hamming_pairs(codes.data(), n, n_bytes, opt, k)),
                                 want);
                        std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                        icas::hamming_components(codes.data(), n, n_bytes, opt, labels.data(), k);
                        CHECK_EQ(labels, want_labels);
                    }
                }
            }
        }
    }
    cov.check();
}

TEST(hamming_invalid_sizes) {
    const std::vector<uint8_t> codes(64);
    std::vector<int32_t> out(64);
    std::vector<int64_t> labels(8);
    icas::PairOptions opt;
    CHECK_THROWS(std::invalid_argument, icas::hamming_matrix(codes.data(), -1, 8, out.data(), 1));
    CHECK_THROWS(std::invalid_argument, icas::hamming_matrix(codes.data(), 2, 0, out.data(), 1));
    CHECK_THROWS(std::invalid_argument,
                 icas::hamming_cross(codes.data(), 2, codes.data(), -1, 8, out.data(), 1));
    CHECK_THROWS(std::invalid_argument, icas::hamming_pairs(codes.data(), 2, 0, opt));
    CHECK_THROWS(std::invalid_argument, icas::hamming_pairs(codes.data(), -3, 8, opt));
    CHECK_THROWS(std::invalid_argument,
                 icas::hamming_components(codes.data(), 2, int64_t{1} << 28, opt, labels.data()));
}

TEST(mih_against_brute) {
    ref::Coverage cov;
    for (auto [n, n_bytes] :
         {std::pair<int64_t, int64_t>{0, 8}, {1, 8}, {2, 8}, {300, 8}, {200, 32}, {150, 3}}) {
        const int64_t bits = 8 * n_bytes;
        const auto codes = ref::clustered_codes(n, n_bytes, 6, 0.05, n * 3 + n_bytes);
        const auto sim = hamming_sim(codes, n_bytes);
        const auto groups = ref::block_groups(n, 2);
        const int64_t m_min =
            (bits + icas::mih_max_substring_bits(n) - 1) / icas::mih_max_substring_bits(n);
        for (double t : {0.7, 0.85, 0.95, 1.0}) {
            for (bool use_groups : {false, true}) {
                const int64_t* g = use_groups ? groups.data() : nullptr;
                const auto want = ref::threshold_pairs(n, sim, t, g);
                if (t > 0 && t < 1) cov.add(n, want.size());
                const auto want_labels = ref::components(n, want);
                for (int64_t m : {int64_t{0}, int64_t{-1}, m_min, m_min + 1, bits / 2, bits}) {
                    for (int threads : ref::kThreadCounts) {
                        icas::PairOptions opt = ref::options(t, g, threads);
                        CHECK_EQ(
                            ref::rows(icas::hamming_index_pairs(codes.data(), n, n_bytes, opt, m)),
                            want);
                        std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                        icas::hamming_index_components(codes.data(), n, n_bytes, opt, labels.data(),
                                                       m);
                        CHECK_EQ(labels, want_labels);
                    }
                }
            }
        }
    }
    cov.check();
}

TEST(mih_plan_and_invalid) {
    for (int64_t n : {0, 1, 100, 1 << 20}) {
        const int64_t s = icas::mih_max_substring_bits(n);
        CHECK(s >= 16 && s <= 28);
    }
    const icas::MihPlan none = icas::mih_plan(1000, 64, -1);
    CHECK_EQ(none.substrings, 0);
    CHECK(!none.use_index);
    const icas::MihPlan p = icas::mih_plan(100000, 64, 4);
    CHECK(p.substrings >= 1 && p.substrings <= 64);
    CHECK_EQ(p.tables, std::min<int64_t>(p.substrings, 5));
    CHECK_EQ(p.max_distance, 4);
    CHECK_THROWS(std::invalid_argument, icas::mih_plan(-1, 64, 4));
    CHECK_THROWS(std::invalid_argument, icas::mih_plan(10, 0, 4));

    const auto codes = ref::clustered_codes(10, 8, 2, 0.1, 3);
    icas::PairOptions opt;
    opt.threshold = 0.9;
    // 64 bits, substrings of at most 16 bits: m in [4, 64].
    CHECK_THROWS(std::invalid_argument, icas::hamming_index_pairs(codes.data(), 10, 8, opt, 3));
    CHECK_THROWS(std::invalid_argument, icas::hamming_index_pairs(codes.data(), 10, 8, opt, 65));
    CHECK_THROWS(std::invalid_argument, icas::hamming_index_pairs(codes.data(), 10, 0, opt));
    CHECK_THROWS(std::invalid_argument, icas::hamming_index_pairs(codes.data(), -1, 8, opt));
    std::vector<int64_t> labels(10);
    CHECK_THROWS(std::invalid_argument,
                 icas::hamming_index_components(codes.data(), 10, 8, opt, labels.data(), 65));
}
