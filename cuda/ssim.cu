// Mean SSIM (scikit-image defaults, 7x7 windows fully inside the image) on
// the device. Per image once: exact window sums Sx and the statistics q, v
// (pair_math.hpp). Per pair, one block: each thread takes windows, computes
// the exact cross sum Sxy over the 49 pixels, the float32 SSIM term of
// pair_math.hpp, and sums terms in double; the block reduces in double. The
// terms equal the CPU's bit for bit; only the summation order differs.
#include "icas/pair_math.hpp"
#include "tiles.cuh"

namespace icas::cuda {

namespace {

constexpr int kW = 7;
constexpr int kThreads = 256;

// One thread per (image, window): Sx, q and v of that window.
__global__ void stats_kernel(const uint8_t* x, int64_t n, int64_t h, int64_t w, int32_t* sx,
                             float* q, float* v) {
    const int64_t oh = h - kW + 1, ow = w - kW + 1, plane = oh * ow;
    const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (e >= n * plane) return;
    const int64_t img = e / plane, win = e % plane, r = win / ow, c = win % ow;
    const uint8_t* p = x + img * h * w + r * w + c;
    int32_t s = 0, ss = 0;
    for (int dr = 0; dr < kW; ++dr)
        for (int dc = 0; dc < kW; ++dc) {
            const int32_t v_ = p[dr * w + dc];
            s += v_;
            ss += v_ * v_;
        }
    sx[e] = s;
    q[e] = pair_math::ssim_q(s);
    v[e] = pair_math::ssim_v(s, ss);
}

struct Images {
    DeviceArray<uint8_t> px;
    DeviceArray<int32_t> sx;
    DeviceArray<float> q, v;
    Images(const uint8_t* host, int64_t n, int64_t h, int64_t w)
        : px(host, n * h * w), sx(n * (h - kW + 1) * (w - kW + 1)), q(sx.size()), v(sx.size()) {
        const int64_t count = sx.size();
        if (count == 0) return;
        stats_kernel<<<static_cast<unsigned>((count + kThreads - 1) / kThreads), kThreads>>>(
            px.get(), n, h, w, sx.get(), q.get(), v.get());
        check_launch("stats_kernel");
    }
};

struct Set {
    const uint8_t* px;
    const int32_t* sx;
    const float* q;
    const float* v;
};

// Block (x = column c of the tile, y = row r): the pair (i0 + r, j0 + c).
__global__ void ssim_tile(Set a, Set b, int64_t h, int64_t w, Tile t, float* out) {
    const int64_t r = blockIdx.y, c = blockIdx.x;
    const int64_t i = t.i0 + r, j = t.j0 + c;
    const int64_t oh = h - kW + 1, ow = w - kW + 1, plane = oh * ow;
    const uint8_t* x = a.px + i * h * w;
    const uint8_t* y = b.px + j * h * w;
    const int64_t oa = i * plane, ob = j * plane;
    double sum = 0.0;
    for (int64_t win = threadIdx.x; win < plane; win += blockDim.x) {
        const int64_t wr = win / ow, wc = win % ow;
        int32_t sxy = 0;
        for (int dr = 0; dr < kW; ++dr)
            for (int dc = 0; dc < kW; ++dc) {
                const int64_t o = (wr + dr) * w + wc + dc;
                sxy += int32_t{x[o]} * int32_t{y[o]};
            }
        const int32_t p = a.sx[oa + win] * b.sx[ob + win];
        const int32_t cov = pair_math::Ssim::kN * sxy - p;
        sum += pair_math::ssim_term(p, cov, a.q[oa + win], b.q[ob + win], a.v[oa + win],
                                    b.v[ob + win]);
    }
    __shared__ double part[kThreads];
    part[threadIdx.x] = sum;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        // |SSIM| <= 1 exactly; only float rounding at the extremes could pass it.
        const double mean = fmin(1.0, fmax(-1.0, part[0] / static_cast<double>(plane)));
        out[r * t.mj + c] = static_cast<float>(mean);
    }
}

struct Fill {
    Set a, b;
    int64_t h, w;
    void operator()(const Tile& t, float* out) const {
        const dim3 grid(static_cast<unsigned>(t.mj), static_cast<unsigned>(t.mi));
        ssim_tile<<<grid, kThreads>>>(a, b, h, w, t, out);
        check_launch("ssim_tile");
    }
};

Set view(const Images& im) { return {im.px.get(), im.sx.get(), im.q.get(), im.v.get()}; }

void check_size(int64_t h, int64_t w) {
    if (h < kW || w < kW)
        throw std::invalid_argument("images must be at least 7x7 pixels (the SSIM window), got " +
                                    std::to_string(h) + "x" + std::to_string(w));
}

// A grid dimension y holds at most 65535 blocks: tiles of block-per-pair
// kernels stay below it.
constexpr int64_t kMaxSide = 4096;

}  // namespace

void ssim_matrix(const uint8_t* images, int64_t n, int64_t h, int64_t w, float* out) {
    if (n <= 0) return;
    check_size(h, w);
    const Images im(images, n, h, w);
    dense<float>(n, n, true, out, Fill{view(im), view(im), h, w}, kMaxSide);
}

void ssim_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t h, int64_t w,
                float* out) {
    if (na <= 0 || nb <= 0) return;
    check_size(h, w);
    const Images ia(a, na, h, w), ib(b, nb, h, w);
    dense<float>(na, nb, false, out, Fill{view(ia), view(ib), h, w}, kMaxSide);
}

PairList ssim_pairs(const uint8_t* images, int64_t n, int64_t h, int64_t w, double threshold,
                    const int64_t* groups) {
    if (n < 2) return {};
    check_size(h, w);
    const Images im(images, n, h, w);
    return pairs<float>(n, groups, Fill{view(im), view(im), h, w}, KeepAtLeast<float>{threshold},
                        kMaxSide);
}

}  // namespace icas::cuda
