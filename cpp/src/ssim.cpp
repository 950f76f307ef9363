// SSIM kernels: exact integer window sums, float32 SSIM formula, double mean.
#include "icas/ssim.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "icas/pair_math.hpp"
#include "icas/parallel.hpp"
#include "icas/simd.hpp"

namespace icas {

namespace {

constexpr int64_t kW = kSsimWindow;
constexpr int32_t kN = 49;  // pixels per window

// skimage's constants on window sums, shared with the CUDA kernels.
constexpr float kC1Half = pair_math::Ssim::kC1Half;

// SSIM terms are summed in kLanes independent float lanes (fixed order, so
// the result is the same bit for bit on every SIMD level), rows in double.
constexpr int64_t kLanes = 16;

// Per-image statistics of every whole 7x7 window (oh x ow of them), computed
// once and shared by all pairs of that image. Rows are padded to `stride`, a
// multiple of kLanes, so the per-pair loop has no scalar tail: a padded entry
// has v = +inf, which makes its SSIM term exactly 0.
struct Stats {
    int64_t n = 0, h = 0, w = 0, oh = 0, ow = 0, stride = 0;
    const uint8_t* px = nullptr;  // (n, h, w), not owned
    std::vector<int32_t> sx;      // (n, oh, stride) window sums Sx (<= 49 * 255)
    std::vector<float> q;         // (n, oh, stride) float(Sx^2) + c1 / 2
    std::vector<float> v;         // (n, oh, stride) float(N Sxx - Sx^2) + c2 / 2

    int64_t plane() const { return oh * stride; }
    const uint8_t* image(int64_t i) const { return px + i * h * w; }
};

int64_t padded_width(int64_t w) {
    const int64_t ow = w - kW + 1;
    return (ow + kLanes - 1) / kLanes * kLanes;
}

// Scratch for one pair: two rows of column sums of x*y, each long enough for
// the padded row (stride + 6).
int64_t scratch_size(int64_t w) { return 2 * (padded_width(w) + kW - 1); }

// Statistics of one (h, w) image. Column sums run down the rows (exact in
// integers, so a running update loses nothing), then 7-tap row sums.
void image_stats(const uint8_t* __restrict x, int64_t h, int64_t w, int32_t* __restrict sx,
                 float* __restrict q, float* __restrict v, int32_t* __restrict cs,
                 int32_t* __restrict css) {
    const int64_t oh = h - kW + 1, ow = w - kW + 1, stride = padded_width(w);
    for (int64_t c = 0; c < w; ++c) {
        int32_t s = 0, ss = 0;
        for (int64_t t = 0; t < kW; ++t) {
            const int32_t p = x[t * w + c];
            s += p;
            ss += p * p;
        }
        cs[c] = s;
        css[c] = ss;
    }
    for (int64_t r = 0; r < oh; ++r) {
        if (r > 0) {
            const uint8_t* add = x + (r + kW - 1) * w;
            const uint8_t* sub = x + (r - 1) * w;
            for (int64_t c = 0; c < w; ++c) {
                const int32_t a = add[c], b = sub[c];
                cs[c] += a - b;
                css[c] += a * a - b * b;
            }
        }
        int32_t* sxr = sx + r * stride;
        float* qr = q + r * stride;
        float* vr = v + r * stride;
        for (int64_t c = 0; c < ow; ++c) {
            int32_t s = 0, ss = 0;
            for (int64_t t = 0; t < kW; ++t) {
                s += cs[c + t];
                ss += css[c + t];
            }
            sxr[c] = s;
            qr[c] = pair_math::ssim_q(s);
            vr[c] = pair_math::ssim_v(s, ss);
        }
        for (int64_t c = ow; c < stride; ++c) {
            sxr[c] = 0;
            qr[c] = kC1Half;
            vr[c] = std::numeric_limits<float>::infinity();
        }
    }
}

Stats prepare(const uint8_t* images, int64_t n, int64_t h, int64_t w, int threads) {
    Stats st;
    st.n = n;
    st.h = h;
    st.w = w;
    st.oh = h - kW + 1;
    st.ow = w - kW + 1;
    st.stride = padded_width(w);
    st.px = images;
    const int64_t plane = st.plane();
    st.sx.resize(static_cast<size_t>(n * plane));
    st.q.resize(static_cast<size_t>(n * plane));
    st.v.resize(static_cast<size_t>(n * plane));
    ExceptionCatcher errors;
#pragma omp parallel num_threads(threads) if (n > 8)
    {
        errors.run([&] {
            std::vector<int32_t> cs(static_cast<size_t>(w)), css(static_cast<size_t>(w));
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; ++i) {
                image_stats(st.image(i), h, w, st.sx.data() + i * plane, st.q.data() + i * plane,
                            st.v.data() + i * plane, cs.data(), css.data());
            }
        });
    }
    errors.rethrow();
    return st;
}

// Mean SSIM of one pair from the two images and their statistics. Only the
// cross sums Sxy are computed here: column sums of x*y running down the rows
// (exact), 7-tap row sums, then the SSIM formula on N Sxy - Sx Sy (exact,
// |.| <= 49^2 * 255^2 < 2^31) in float32. `scratch` holds scratch_size(w)
// int32. Owns the hot loops, hence the SIMD clones.
//
// With a `threshold` above -1 the pair stops as soon as its mean cannot reach
// it: every window's term is <= 1 (Cauchy-Schwarz on both factors), so after
// r rows the final sum is at most the rows' sum plus one per window left. A
// pair stopped early returns that bound, which is below the threshold (with a
// margin for float rounding), so every form keeps or drops exactly the pairs
// it would have computed in full; a finished pair's value is unchanged bit
// for bit. Most pairs of a folder are unrelated images, whose partial mean
// settles low after a quarter of the rows or so.
ICAS_CLONES
double pair_kernel(const uint8_t* __restrict x, const uint8_t* __restrict y,
                   const int32_t* __restrict sa, const float* __restrict qa,
                   const float* __restrict va, const int32_t* __restrict sb,
                   const float* __restrict qb, const float* __restrict vb, int64_t h, int64_t w,
                   int32_t* __restrict scratch, double threshold) {
    const int64_t oh = h - kW + 1, ow = w - kW + 1, stride = padded_width(w);
    const double windows = static_cast<double>(oh * ow);
    // Bound on one window's term after float rounding (|term| <= 1 exactly),
    // and the sum the pair must still be able to reach.
    constexpr double kTermMax = 1.0 + 1e-5;
    const bool prune = threshold > -1.0;
    const double need = (threshold - 1e-6) * windows;
    double running = 0.0;
    // N * Sxy as one vector multiply: hidden from the optimiser, which would
    // otherwise expand the constant 49 into four shifts and adds (the loop
    // is bound by vector ALU ops, and the multiply is one op).
    int32_t n_window = kN;
    __asm__("" : "+r"(n_window));
    // Two buffers of column sums, one per parity of the output row: row r
    // reads the buffer written while row r - 1 was processed, never one just
    // stored (its 7 overlapping unaligned loads would defeat store forwarding).
    const int64_t len = stride + kW - 1;
    int32_t* __restrict even = scratch;
    int32_t* __restrict odd = scratch + len;
    for (int64_t c = 0; c < w; ++c) {
        int32_t s = 0;
        for (int64_t t = 0; t < kW; ++t) s += int32_t{x[t * w + c]} * int32_t{y[t * w + c]};
        even[c] = s;
    }
    for (int64_t c = w; c < len; ++c) even[c] = odd[c] = 0;  // read by the padded lanes
    double total[kLanes] = {};
    for (int64_t r = 0; r < oh; ++r) {
        const int32_t* __restrict vp = (r & 1) ? odd : even;
        if (r + 1 < oh) {
            int32_t* __restrict next = (r & 1) ? even : odd;
            const uint8_t* xa = x + (r + kW) * w;
            const uint8_t* ya = y + (r + kW) * w;
            const uint8_t* xs = x + r * w;
            const uint8_t* ys = y + r * w;
            for (int64_t c = 0; c < w; ++c)
                next[c] = vp[c] + int32_t{xa[c]} * int32_t{ya[c]} - int32_t{xs[c]} * int32_t{ys[c]};
        }
        const int64_t o = r * stride;
        float row[kLanes] = {};
        for (int64_t c0 = 0; c0 < stride; c0 += kLanes) {
#pragma omp simd
            for (int64_t l = 0; l < kLanes; ++l) {
                const int64_t c = c0 + l;
                const int32_t sxy =
                    vp[c] + vp[c + 1] + vp[c + 2] + vp[c + 3] + vp[c + 4] + vp[c + 5] + vp[c + 6];
                const int32_t p = sa[o + c] * sb[o + c];
                const int32_t cov = n_window * sxy - p;
                row[l] += pair_math::ssim_term(p, cov, qa[o + c], qb[o + c], va[o + c], vb[o + c]);
            }
        }
        for (int64_t l = 0; l < kLanes; ++l) total[l] += row[l];
        if (prune) {
            for (int64_t l = 0; l < kLanes; ++l) running += row[l];
            const double bound = running + kTermMax * static_cast<double>((oh - 1 - r) * ow);
            if (bound < need) return bound / windows;
        }
    }
    double sum = 0.0;
    for (int64_t l = 0; l < kLanes; ++l) sum += total[l];
    // |SSIM| <= 1 exactly (Cauchy-Schwarz); only float rounding of windows
    // at the extremes could nudge the mean past it. Nothing else is clipped.
    return std::clamp(sum / static_cast<double>(oh * ow), -1.0, 1.0);
}

// The SSIM of a pair; with a threshold above -1, only decided: a pair that
// cannot reach it may return any value below it (see pair_kernel).
inline double pair(const Stats& A, int64_t i, const Stats& B, int64_t j, int32_t* scratch,
                   double threshold = -2.0) {
    const int64_t o = i * A.plane(), p = j * B.plane();
    return pair_kernel(A.image(i), B.image(j), A.sx.data() + o, A.q.data() + o, A.v.data() + o,
                       B.sx.data() + p, B.q.data() + p, B.v.data() + p, A.h, A.w, scratch,
                       threshold);
}

// Side of a square tile of images: the two image sets of a tile (pixels and
// statistics) should stay in a core's L2 cache while its pairs are computed.
int64_t tile_side(int64_t h, int64_t w) {
    const int64_t bytes = h * w + (h - kW + 1) * padded_width(w) * 12;
    const int64_t budget = 512 * 1024;
    return std::clamp<int64_t>(budget / (2 * bytes), 1, 64);
}

// Calls f(tile, i, j, scratch) for every pair (i, j) of every tile, tiles
// spread over threads (dynamic: tiles on the diagonal are half full). With
// `upper`, only j > i. `scratch` is the calling thread's pair scratch.
template <class F>
void for_tiles(int64_t na, int64_t nb, bool upper, int64_t side, int64_t w, int threads,
               const F& f) {
    const int64_t ta = (na + side - 1) / side, tb = (nb + side - 1) / side;
    std::vector<std::pair<int64_t, int64_t>> tiles;
    for (int64_t bi = 0; bi < ta; ++bi)
        for (int64_t bj = upper ? bi : 0; bj < tb; ++bj) tiles.emplace_back(bi, bj);
    const int64_t nt = static_cast<int64_t>(tiles.size());
    ExceptionCatcher errors;
#pragma omp parallel num_threads(threads) if (nt > 1)
    {
        errors.run([&] {
            std::vector<int32_t> scratch(static_cast<size_t>(scratch_size(w)));
#pragma omp for schedule(dynamic, 1)
            for (int64_t t = 0; t < nt; ++t) {
                const auto [bi, bj] = tiles[static_cast<size_t>(t)];
                const int64_t i1 = std::min(na, (bi + 1) * side);
                const int64_t j1 = std::min(nb, (bj + 1) * side);
                for (int64_t i = bi * side; i < i1; ++i)
                    for (int64_t j = upper ? std::max(i + 1, bj * side) : bj * side; j < j1; ++j)
                        f(t, i, j, scratch.data());
            }
        });
    }
    errors.rethrow();
}

}  // namespace

void ssim_check_size(int64_t h, int64_t w) {
    if (h >= kW && w >= kW) return;
    throw std::invalid_argument(
        "win_size 7 exceeds image extent: SSIM images must be at least "
        "7x7, got " +
        std::to_string(h) + "x" + std::to_string(w));
}

double ssim(const uint8_t* a, const uint8_t* b, int64_t h, int64_t w) {
    ssim_check_size(h, w);
    const Stats A = prepare(a, 1, h, w, 1);
    const Stats B = prepare(b, 1, h, w, 1);
    std::vector<int32_t> scratch(static_cast<size_t>(scratch_size(w)));
    return pair(A, 0, B, 0, scratch.data());
}

void ssim_matrix(const uint8_t* images, int64_t n, int64_t h, int64_t w, float* out,
                 int n_threads) {
    if (n == 0) return;
    ssim_check_size(h, w);
    const int threads = resolve_threads(n_threads);
    const Stats st = prepare(images, n, h, w, threads);
    for (int64_t i = 0; i < n; ++i) out[i * n + i] = 1.0f;
    for_tiles(n, n, true, tile_side(h, w), w, threads,
              [&](int64_t, int64_t i, int64_t j, int32_t* scratch) {
                  const float s = static_cast<float>(pair(st, i, st, j, scratch));
                  out[i * n + j] = s;
                  out[j * n + i] = s;
              });
}

void ssim_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t h, int64_t w,
                float* out, int n_threads) {
    if (na == 0 || nb == 0) return;
    ssim_check_size(h, w);
    const int threads = resolve_threads(n_threads);
    const Stats A = prepare(a, na, h, w, threads);
    const Stats B = prepare(b, nb, h, w, threads);
    for_tiles(na, nb, false, tile_side(h, w), w, threads,
              [&](int64_t, int64_t i, int64_t j, int32_t* scratch) {
                  out[i * nb + j] = static_cast<float>(pair(A, i, B, j, scratch));
              });
}

Edges ssim_pairs(const uint8_t* images, int64_t n, int64_t h, int64_t w, const PairOptions& opt) {
    Edges edges;
    if (n < 2) return edges;
    ssim_check_size(h, w);
    const int threads = resolve_threads(opt.n_threads);
    const Stats st = prepare(images, n, h, w, threads);
    const int64_t side = tile_side(h, w);
    const int64_t t = (n + side - 1) / side;
    // One list per tile (each written by one thread), sorted by (i, j) after.
    std::vector<std::vector<std::tuple<int64_t, int64_t, float>>> found(
        static_cast<size_t>(t * (t + 1) / 2));
    for_tiles(n, n, true, side, w, threads,
              [&](int64_t tile, int64_t i, int64_t j, int32_t* scratch) {
                  if (detail::same_group(opt, i, j)) return;
                  const float s = static_cast<float>(pair(st, i, st, j, scratch, opt.threshold));
                  if (s >= opt.threshold) found[tile].emplace_back(i, j, s);
              });
    std::vector<std::tuple<int64_t, int64_t, float>> all;
    for (auto& f : found) all.insert(all.end(), f.begin(), f.end());
    std::sort(all.begin(), all.end());
    edges.ij.reserve(2 * all.size());
    edges.score.reserve(all.size());
    for (const auto& [i, j, s] : all) {
        edges.ij.push_back(i);
        edges.ij.push_back(j);
        edges.score.push_back(s);
    }
    return edges;
}

void ssim_components(const uint8_t* images, int64_t n, int64_t h, int64_t w, const PairOptions& opt,
                     int64_t* labels) {
    if (n == 0) return;
    if (n == 1) {
        labels[0] = 0;
        return;
    }
    ssim_check_size(h, w);
    const Stats st = prepare(images, n, h, w, resolve_threads(opt.n_threads));
    pairs_components(
        n,
        [&](int64_t i, int64_t j) {
            thread_local std::vector<int32_t> scratch;
            scratch.resize(static_cast<size_t>(scratch_size(w)));
            // The float32 score, as in the other forms, so that every form
            // agrees on which pairs pass the threshold.
            return static_cast<double>(
                static_cast<float>(pair(st, i, st, j, scratch.data(), opt.threshold)));
        },
        opt, labels);
}

}  // namespace icas
