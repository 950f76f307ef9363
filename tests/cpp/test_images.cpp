// Template matching and SSIM on small images, against direct double-precision
// formulas: symmetry, self-similarity, bounds, every result form.
#include <cmath>
#include <stdexcept>

#include "check.hpp"
#include "icas/ssim.hpp"
#include "icas/template_match.hpp"
#include "reference.hpp"

namespace {

// n images of `len` pixels: groups of three noisy copies of a random base,
// plus an all-black and a constant image when n allows.
std::vector<uint8_t> images(int64_t n, int64_t len, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> out(static_cast<size_t>(n * len));
    std::vector<int> base(static_cast<size_t>(len));
    for (int64_t i = 0; i < n; ++i) {
        if (i % 3 == 0)
            for (auto& b : base) b = static_cast<int>(rng() % 256);
        const int noise = static_cast<int>(i % 3) * 20;
        for (int64_t p = 0; p < len; ++p) {
            const int v = base[p] + (noise ? static_cast<int>(rng() % (2 * noise + 1)) - noise : 0);
            out[i * len + p] = static_cast<uint8_t>(std::clamp(v, 0, 255));
        }
    }
    if (n >= 5) std::fill(out.begin() + 4 * len, out.begin() + 5 * len, uint8_t{0});
    if (n >= 6) std::fill(out.begin() + 5 * len, out.begin() + 6 * len, uint8_t{128});
    return out;
}

double tm_ref(const uint8_t* a, const uint8_t* b, int64_t len) {
    double na = 0, nb = 0, sq = 0;
    for (int64_t p = 0; p < len; ++p) {
        const double u = a[p], v = b[p];
        na += u * u;
        nb += v * v;
        sq += (u - v) * (u - v);
    }
    const double t = std::sqrt(na) * std::sqrt(nb);
    return 1.0 - ((t > 0 && sq < t) ? sq / t : 1.0);
}

// skimage.metrics.structural_similarity defaults: 7x7 uniform window, sample
// covariance, mean over the windows fully inside the image.
double ssim_ref(const uint8_t* a, const uint8_t* b, int64_t h, int64_t w) {
    const double N = 49, C1 = std::pow(0.01 * 255, 2), C2 = std::pow(0.03 * 255, 2);
    double total = 0;
    int64_t windows = 0;
    for (int64_t r = 0; r + 7 <= h; ++r)
        for (int64_t c = 0; c + 7 <= w; ++c) {
            double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
            for (int64_t y = r; y < r + 7; ++y)
                for (int64_t x = c; x < c + 7; ++x) {
                    const double u = a[y * w + x], v = b[y * w + x];
                    sx += u;
                    sy += v;
                    sxx += u * u;
                    syy += v * v;
                    sxy += u * v;
                }
            const double mx = sx / N, my = sy / N;
            const double vx = (sxx / N - mx * mx) * N / (N - 1);
            const double vy = (syy / N - my * my) * N / (N - 1);
            const double cxy = (sxy / N - mx * my) * N / (N - 1);
            total +=
                ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
            ++windows;
        }
    return total / static_cast<double>(windows);
}

// Checks matrix / cross / pairs / components of one kernel family against
// `sim` (the reference), with thresholds kept away from every value.
template <class Matrix, class Cross, class Pairs, class Components>
void check_forms(int64_t n, const std::function<double(int64_t, int64_t)>& sim, double tol,
                 const Matrix& matrix, const Cross& cross, const Pairs& pairs,
                 const Components& components, std::initializer_list<double> thresholds,
                 ref::Coverage& cov) {
    std::vector<double> values;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = i + 1; j < n; ++j) values.push_back(sim(i, j));
    const auto groups = ref::block_groups(n, 2);
    std::vector<float> first_matrix;
    for (int threads : ref::kThreadCounts) {
        std::vector<float> m(static_cast<size_t>(n * n), -7);
        matrix(m.data(), threads);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j) {
                CHECK_NEAR(m[i * n + j], sim(i, j), tol);
                CHECK_EQ(m[i * n + j], m[j * n + i]);  // symmetric bit for bit
            }
        if (threads == 1) first_matrix = m;
        CHECK_EQ(m, first_matrix);
        // cross of the set against itself: the matrix again.
        std::vector<float> c(static_cast<size_t>(n * n), -7);
        cross(c.data(), threads);
        for (int64_t k = 0; k < n * n; ++k) CHECK_NEAR(c[k], m[k], tol);
        for (double t0 : thresholds) {
            const double t = ref::safe_threshold(values, t0, 10 * tol);
            for (bool use_groups : {false, true}) {
                const int64_t* g = use_groups ? groups.data() : nullptr;
                const auto want = ref::threshold_pairs(n, sim, t, g);
                if (t > 0 && t < 1) cov.add(n, want.size());
                icas::PairOptions opt = ref::options(t, g, threads);
                const auto got = ref::rows(pairs(opt));
                REQUIRE_EQ(got.size(), want.size());
                for (size_t e = 0; e < got.size(); ++e) {
                    CHECK_EQ(got[e].i, want[e].i);
                    CHECK_EQ(got[e].j, want[e].j);
                    CHECK_EQ(got[e].score, m[got[e].i * n + got[e].j]);
                }
                std::vector<int64_t> labels(static_cast<size_t>(n), -7);
                components(opt, labels.data());
                CHECK_EQ(labels, ref::components(n, want));
            }
        }
    }
}

}  // namespace

TEST(tm_against_direct_formula) {
    ref::Coverage cov;
    for (int64_t len : {1, 5, 64, 1000, 3000}) {
        for (int64_t n : {0, 1, 2, 12, 40}) {
            const auto x = images(n, len, static_cast<uint64_t>(len * 31 + n));
            auto sim = [&](int64_t i, int64_t j) { return tm_ref(&x[i * len], &x[j * len], len); };
            check_forms(
                n, sim, 1e-6, [&](float* out, int t) { icas::tm_matrix(x.data(), n, len, out, t); },
                [&](float* out, int t) { icas::tm_cross(x.data(), n, x.data(), n, len, out, t); },
                [&](const icas::PairOptions& o) { return icas::tm_pairs(x.data(), n, len, o); },
                [&](const icas::PairOptions& o, int64_t* l) {
                    icas::tm_components(x.data(), n, len, o, l);
                },
                {0.0, 0.5, 0.9, 0.99}, cov);
            std::vector<int64_t> norms(static_cast<size_t>(n), -1);
            icas::tm_squared_norms(x.data(), n, len, norms.data(), 2);
            for (int64_t i = 0; i < n; ++i) {
                int64_t want = 0;
                for (int64_t p = 0; p < len; ++p) want += int64_t{x[i * len + p]} * x[i * len + p];
                CHECK_EQ(norms[i], want);
            }
            // Self-similarity 1, except the black image (0); bounds [0, 1].
            std::vector<float> m(static_cast<size_t>(n * n));
            icas::tm_matrix(x.data(), n, len, m.data(), 1);
            for (int64_t i = 0; i < n; ++i) {
                bool black = true;
                for (int64_t p = 0; p < len; ++p) black &= x[i * len + p] == 0;
                CHECK_EQ(m[i * n + i], black ? 0.0f : 1.0f);
                for (int64_t j = 0; j < n; ++j) CHECK(m[i * n + j] >= 0.0f && m[i * n + j] <= 1.0f);
            }
        }
    }
    cov.check();
}

TEST(tm_score_symmetric) {
    for (int64_t na : {0, 3, 1000, 123456})
        for (int64_t nb : {0, 7, 1000, 99999})
            for (int64_t dot : {int64_t{0}, std::min(na, nb) / 3})
                CHECK_EQ(icas::tm_score(na, nb, dot), icas::tm_score(nb, na, dot));
    CHECK_EQ(icas::tm_score(0, 0, 0), 0.0);
    CHECK_EQ(icas::tm_score(500, 500, 500), 1.0);
}

TEST(tm_sliding_against_direct) {
    std::mt19937_64 rng(5);
    for (auto [ih, iw, th, tw, ch] :
         {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{9, 11, 3, 4, 1},
          {8, 8, 8, 8, 3},
          {12, 10, 5, 1, 3},
          {6, 7, 1, 1, 1}}) {
        std::vector<uint8_t> image(static_cast<size_t>(ih * iw * ch));
        for (auto& v : image) v = static_cast<uint8_t>(rng() % 256);
        // The template: a crop of the image plus a little noise.
        std::vector<uint8_t> templ(static_cast<size_t>(th * tw * ch));
        const int64_t r0 = (ih - th) / 2, c0 = (iw - tw) / 2;
        for (int64_t y = 0; y < th; ++y)
            for (int64_t x = 0; x < tw * ch; ++x) {
                const int v =
                    image[(r0 + y) * iw * ch + c0 * ch + x] + static_cast<int>(rng() % 9) - 4;
                templ[y * tw * ch + x] = static_cast<uint8_t>(std::clamp(v, 0, 255));
            }
        double best = 0;
        for (int64_t r = 0; r + th <= ih; ++r)
            for (int64_t c = 0; c + tw <= iw; ++c) {
                std::vector<uint8_t> win;
                for (int64_t y = 0; y < th; ++y)
                    for (int64_t x = 0; x < tw * ch; ++x)
                        win.push_back(image[(r + y) * iw * ch + c * ch + x]);
                best = std::max(best, tm_ref(win.data(), templ.data(), th * tw * ch));
            }
        for (int threads : ref::kThreadCounts)
            CHECK_NEAR(icas::tm_similarity(image.data(), ih, iw, templ.data(), th, tw, ch, threads),
                       best, 1e-12);
    }
    std::vector<uint8_t> img(64, 1);
    CHECK_THROWS(std::invalid_argument,
                 icas::tm_similarity(img.data(), 4, 4, img.data(), 5, 1, 1, 1));
    CHECK_THROWS(std::invalid_argument,
                 icas::tm_similarity(img.data(), 4, 4, img.data(), 1, 5, 1, 1));
    CHECK_THROWS(std::invalid_argument,
                 icas::tm_similarity(img.data(), 4, 4, img.data(), 0, 1, 1, 1));
    CHECK_THROWS(std::invalid_argument,
                 icas::tm_similarity(img.data(), 4, 4, img.data(), 1, 1, 0, 1));
}

TEST(ssim_against_direct_formula) {
    ref::Coverage cov;
    for (auto [h, w] : {std::pair<int64_t, int64_t>{7, 7}, {7, 12}, {16, 9}, {23, 31}}) {
        for (int64_t n : {0, 1, 2, 9}) {
            const auto x = images(n, h * w, static_cast<uint64_t>(h * w + n));
            const int64_t len = h * w;
            auto sim = [&](int64_t i, int64_t j) {
                return ssim_ref(&x[i * len], &x[j * len], h, w);
            };
            check_forms(
                n, sim, 2e-5,
                [&](float* out, int t) { icas::ssim_matrix(x.data(), n, h, w, out, t); },
                [&](float* out, int t) {
                    icas::ssim_cross(x.data(), n, x.data(), n, h, w, out, t);
                },
                [&](const icas::PairOptions& o) { return icas::ssim_pairs(x.data(), n, h, w, o); },
                [&](const icas::PairOptions& o, int64_t* l) {
                    icas::ssim_components(x.data(), n, h, w, o, l);
                },
                {-0.5, 0.0, 0.3, 0.8}, cov);
            for (int64_t i = 0; i < n; ++i) {
                CHECK_EQ(icas::ssim(&x[i * len], &x[i * len], h, w), 1.0);
                for (int64_t j = 0; j < n; ++j) {
                    const double s = icas::ssim(&x[i * len], &x[j * len], h, w);
                    CHECK_EQ(s, icas::ssim(&x[j * len], &x[i * len], h, w));
                    CHECK(s >= -1.0 && s <= 1.0);
                    CHECK_NEAR(s, sim(i, j), 2e-5);
                }
            }
        }
    }
    cov.check();
}

TEST(ssim_invalid_sizes) {
    std::vector<uint8_t> img(100, 3);
    std::vector<float> out(4);
    icas::PairOptions opt;
    std::vector<int64_t> labels(2);
    CHECK_THROWS(std::invalid_argument, icas::ssim_check_size(6, 7));
    CHECK_THROWS(std::invalid_argument, icas::ssim_check_size(7, 6));
    icas::ssim_check_size(7, 7);
    CHECK_THROWS(std::invalid_argument, icas::ssim(img.data(), img.data(), 10, 6));
    CHECK_THROWS(std::invalid_argument, icas::ssim_matrix(img.data(), 1, 6, 10, out.data(), 1));
    CHECK_THROWS(std::invalid_argument,
                 icas::ssim_cross(img.data(), 1, img.data(), 1, 5, 5, out.data(), 1));
    CHECK_THROWS(std::invalid_argument, icas::ssim_pairs(img.data(), 2, 5, 10, opt));
    CHECK_THROWS(std::invalid_argument,
                 icas::ssim_components(img.data(), 2, 10, 5, opt, labels.data()));
}
