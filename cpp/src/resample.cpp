// Pillow-exact Lanczos resize of uint8 images (see icas/resample.hpp).
//
// Both passes run one kernel, resample_rows: output row i is a weighted sum
// of consecutive input rows, vectorised along the row. The vertical pass is
// that directly; the horizontal pass is that on the transposed image, and its
// result is transposed back, so Pillow's order (horizontal, round, vertical,
// round) is kept exactly.
#include "icas/resample.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "icas/simd.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#if defined(__FAST_MATH__)
#error "resample.cpp must not be built with -ffast-math: the weights must round as in Pillow"
#endif

namespace icas {

namespace {

// Pillow's fixed point: 8 bits of result, 2 bits of headroom for the negative
// lobes and sums above 1.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kSupport = 3.0;  // Lanczos-3

// Weights of one axis: output o reads `count[o]` input lines from `first[o]`
// with the int32 weights k[o * ksize ...].
struct Axis {
    int ksize = 0;
    std::vector<int32_t> first, count, k;
};

// Pillow's sinc and lanczos_filter. Not inlined, as in Pillow (a call through
// a pointer there): the product is rounded on return, so the compiler cannot
// fuse it with the sum of the weights into an FMA on targets that have one.
__attribute__((noinline)) double lanczos(double x) {
    if (-3.0 <= x && x < 3.0) {
        double a = 1.0, b = 1.0;
        if (x != 0.0) {
            const double t = x * M_PI;
            a = std::sin(t) / t;
        }
        const double x3 = x / 3;
        if (x3 != 0.0) {
            const double t = x3 * M_PI;
            b = std::sin(t) / t;
        }
        return a * b;
    }
    return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box
// [0, in_size) (float, as Pillow's box) -> out_size. Every expression is
// Pillow's, in its order; the only multiply-add candidates are (xx + 0.5) *
// scale + 0 and w * 2^22 + 0.5, whose products are exact or whose addend is
// zero, so a fused multiply-add would round them the same.
Axis make_axis(int in_size, int out_size) {
    const float in0 = 0.0f, in1 = static_cast<float>(in_size);
    const double scale = static_cast<double>(in1 - in0) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = kSupport * filterscale;
    Axis ax;
    ax.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    ax.first.resize(out_size);
    ax.count.resize(out_size);
    ax.k.assign(static_cast<size_t>(out_size) * ax.ksize, 0);
    std::vector<double> w(ax.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = in0 + (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        double ww = 0.0;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; ++x) {
            w[x] = lanczos((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t* k = &ax.k[static_cast<size_t>(xx) * ax.ksize];
        for (int x = 0; x < xmax; ++x) {
            const double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                         : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
        }
        ax.first[xx] = xmin;
        ax.count[xx] = xmax;
    }
    return ax;
}

// The weights cost two sin() per tap, as much as the resize itself at 1024 px:
// the last few axes are kept per thread (image folders repeat their sizes).
std::shared_ptr<const Axis> cached_axis(int64_t in64, int64_t out64) {
    const int in_size = static_cast<int>(in64), out_size = static_cast<int>(out64);
    struct Entry {
        int in = -1, out = -1;
        std::shared_ptr<const Axis> axis;
    };
    thread_local std::array<Entry, 4> cache;
    thread_local size_t next = 0;
    for (const Entry& e : cache)
        if (e.in == in_size && e.out == out_size) return e.axis;
    Entry& e = cache[next];
    next = (next + 1) % cache.size();
    e.axis = std::make_shared<const Axis>(make_axis(in_size, out_size));
    e.in = in_size;
    e.out = out_size;
    return e.axis;
}

// Scratch images, kept per thread between calls: fresh buffers of a few
// hundred kB come from mmap, and their page faults cost more than the resize.
// Buffers above kKeepBytes are released after the call.
constexpr size_t kKeepBytes = size_t{16} << 20;

class Scratch {
  public:
    enum Slot { kTemp, kColumns, kResampled, kSlots };

    ~Scratch() {
        for (Buffer& b : buffers()) {
            if (b.size > kKeepBytes) {
                b.data.reset();
                b.size = 0;
            }
        }
    }
    // An uninitialised buffer of at least n bytes, valid until this object
    // goes out of scope (one Scratch per resize call).
    uint8_t* get(Slot slot, size_t n) {
        Buffer& b = buffers()[slot];
        if (b.size < n) {
            b.data.reset();
            b.data.reset(new uint8_t[n]);
            b.size = n;
        }
        return b.data.get();
    }

  private:
    struct Buffer {
        std::unique_ptr<uint8_t[]> data;
        size_t size = 0;
    };
    static std::array<Buffer, kSlots>& buffers() {
        thread_local std::array<Buffer, kSlots> b;
        return b;
    }
};

// Columns per block: the int32 accumulators of a block stay in L1.
constexpr int64_t kBlock = 1024;

// out row i (width values) = clip8(2^21 + sum_t k[i][t] * in row first[i] + t),
// for the n_out rows of `ax`, rows of `in` starting at in_row0. Sums are
// exact: |weights| sum to < 1.4 * 2^22, times 255, below 2^31.
ICAS_CLONES void resample_rows(const uint8_t* in, int64_t in_stride, int64_t in_row0, int64_t width,
                               const Axis& ax, uint8_t* out, int64_t out_stride) {
    alignas(64) int32_t acc[kBlock];
    const int64_t n_out = static_cast<int64_t>(ax.first.size());
    for (int64_t i = 0; i < n_out; ++i) {
        const int32_t* c = &ax.k[static_cast<size_t>(i) * ax.ksize];
        const int64_t n = ax.count[i];
        const uint8_t* base = in + (ax.first[i] - in_row0) * in_stride;
        uint8_t* o = out + i * out_stride;
        for (int64_t j0 = 0; j0 < width; j0 += kBlock) {
            const int64_t m = std::min(kBlock, width - j0);
            const uint8_t* r = base + j0;
            for (int64_t j = 0; j < m; ++j) acc[j] = int32_t{1} << (kPrecisionBits - 1);
            // Four taps per sweep over the accumulators, then the rest.
            int64_t t = 0;
            for (; t + 4 <= n; t += 4) {
                const uint8_t* r0 = r + t * in_stride;
                const uint8_t* r1 = r0 + in_stride;
                const uint8_t* r2 = r1 + in_stride;
                const uint8_t* r3 = r2 + in_stride;
                const int32_t c0 = c[t], c1 = c[t + 1], c2 = c[t + 2], c3 = c[t + 3];
                for (int64_t j = 0; j < m; ++j)
                    acc[j] += r0[j] * c0 + r1[j] * c1 + r2[j] * c2 + r3[j] * c3;
            }
            for (; t + 2 <= n; t += 2) {
                const uint8_t* r0 = r + t * in_stride;
                const uint8_t* r1 = r0 + in_stride;
                const int32_t c0 = c[t], c1 = c[t + 1];
                for (int64_t j = 0; j < m; ++j) acc[j] += r0[j] * c0 + r1[j] * c1;
            }
            if (t < n) {
                const uint8_t* r0 = r + t * in_stride;
                const int32_t c0 = c[t];
                for (int64_t j = 0; j < m; ++j) acc[j] += r0[j] * c0;
            }
            uint8_t* oj = o + j0;
            for (int64_t j = 0; j < m; ++j) {
                const int32_t v = acc[j] >> kPrecisionBits;
                oj[j] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
            }
        }
    }
}

#if defined(__SSE2__)
// 16 x 16 bytes: d row c = s column c. Four rounds of interleaving
// (8, 16, 32, 64 bits), each doubling the run of one column's bytes.
void transpose16(const uint8_t* s, int64_t ss, uint8_t* d, int64_t ds) {
    __m128i a[16], b[16];
    for (int r = 0; r < 16; ++r)
        a[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + r * ss));
    // b[2i] = rows 2i, 2i+1 of columns 0-7; b[2i+1] of columns 8-15.
    for (int i = 0; i < 8; ++i) {
        b[2 * i] = _mm_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
        b[2 * i + 1] = _mm_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
    }
    // a[4g + q] = rows 4g..4g+3 of columns 4q..4q+3.
    for (int g = 0; g < 4; ++g) {
        a[4 * g + 0] = _mm_unpacklo_epi16(b[4 * g], b[4 * g + 2]);
        a[4 * g + 1] = _mm_unpackhi_epi16(b[4 * g], b[4 * g + 2]);
        a[4 * g + 2] = _mm_unpacklo_epi16(b[4 * g + 1], b[4 * g + 3]);
        a[4 * g + 3] = _mm_unpackhi_epi16(b[4 * g + 1], b[4 * g + 3]);
    }
    // b[8h + m] = rows 8h..8h+7 of columns 2m, 2m+1.
    for (int h = 0; h < 2; ++h) {
        for (int q = 0; q < 4; ++q) {
            b[8 * h + 2 * q] = _mm_unpacklo_epi32(a[8 * h + q], a[8 * h + 4 + q]);
            b[8 * h + 2 * q + 1] = _mm_unpackhi_epi32(a[8 * h + q], a[8 * h + 4 + q]);
        }
    }
    for (int m = 0; m < 8; ++m) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + (2 * m) * ds),
                         _mm_unpacklo_epi64(b[m], b[8 + m]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + (2 * m + 1) * ds),
                         _mm_unpackhi_epi64(b[m], b[8 + m]));
    }
}
#endif

// d (cols, rows) = transpose of s (rows, cols); strides in bytes.
void transpose(const uint8_t* s, int64_t rows, int64_t cols, int64_t ss, uint8_t* d, int64_t ds) {
    int64_t r0 = 0;
#if defined(__SSE2__)
    for (; r0 + 16 <= rows; r0 += 16) {
        int64_t c0 = 0;
        for (; c0 + 16 <= cols; c0 += 16) transpose16(s + r0 * ss + c0, ss, d + c0 * ds + r0, ds);
        for (int64_t c = c0; c < cols; ++c)
            for (int64_t r = r0; r < r0 + 16; ++r) d[c * ds + r] = s[r * ss + c];
    }
#endif
    // Remaining rows, in tiles so that both sides stay in cache.
    constexpr int64_t kTile = 64;
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t c1 = std::min(cols, c0 + kTile);
        for (int64_t r = r0; r < rows; ++r)
            for (int64_t c = c0; c < c1; ++c) d[c * ds + r] = s[r * ss + c];
    }
}

// dst (rows, out_w) = the horizontal pass over src (rows, in_w): resample_rows
// on the transposed image, transposed back.
void horizontal_pass(const uint8_t* src, int64_t rows, int64_t in_w, const Axis& horiz,
                     int64_t out_w, uint8_t* dst, Scratch& scratch) {
    uint8_t* columns = scratch.get(Scratch::kColumns, in_w * rows);       // (in_w, rows)
    uint8_t* resampled = scratch.get(Scratch::kResampled, out_w * rows);  // (out_w, rows)
    transpose(src, rows, in_w, in_w, columns, rows);
    resample_rows(columns, rows, 0, rows, horiz, resampled, rows);
    transpose(resampled, out_w, rows, rows, dst, out_w);
}

}  // namespace

void resize_lanczos_check(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w) {
    const char* names[4] = {"input height", "input width", "output height", "output width"};
    const int64_t sides[4] = {in_h, in_w, out_h, out_w};
    for (int i = 0; i < 4; ++i) {
        if (sides[i] < 1 || sides[i] > kResampleMaxSide)
            throw std::invalid_argument(std::string(names[i]) + " must be in [1, " +
                                        std::to_string(kResampleMaxSide) + "], got " +
                                        std::to_string(sides[i]));
    }
    // Pillow's check on the size of the weight buffer of each axis.
    for (int axis = 0; axis < 2; ++axis) {
        const int64_t in = axis ? in_w : in_h, out = axis ? out_w : out_h;
        const double filterscale = std::max(1.0, static_cast<double>(in) / out);
        const int64_t ksize = static_cast<int64_t>(std::ceil(kSupport * filterscale)) * 2 + 1;
        if (out > INT_MAX / (ksize * static_cast<int64_t>(sizeof(double))))
            throw std::invalid_argument("resize from " + std::to_string(in) + " to " +
                                        std::to_string(out) + " needs too many filter weights");
    }
}

void resize_lanczos(const uint8_t* src, int64_t in_h, int64_t in_w, uint8_t* dst, int64_t out_h,
                    int64_t out_w, bool pillow13_order) {
    resize_lanczos_check(in_h, in_w, out_h, out_w);
    const bool horizontal = out_w != in_w;
    const bool vertical = out_h != in_h;
    if (!horizontal && !vertical) {
        std::memcpy(dst, src, static_cast<size_t>(in_h * in_w));
        return;
    }
    if (!horizontal) {
        resample_rows(src, in_w, 0, in_w, *cached_axis(in_h, out_h), dst, out_w);
        return;
    }
    const auto horiz = cached_axis(in_w, out_w);
    Scratch scratch;
    if (!vertical) {
        horizontal_pass(src, in_h, in_w, *horiz, out_w, dst, scratch);
        return;
    }
    const auto vert = cached_axis(in_h, out_h);
    // Pillow 13 resizes vertically first when the height shrinks by more than
    // twice as many pixels as the width does.
    if (pillow13_order && in_h - out_h > 0 && in_h - out_h > 2 * (in_w - out_w)) {
        uint8_t* temp = scratch.get(Scratch::kTemp, out_h * in_w);  // (out_h, in_w)
        resample_rows(src, in_w, 0, in_w, *vert, temp, in_w);
        horizontal_pass(temp, out_h, in_w, *horiz, out_w, dst, scratch);
        return;
    }
    // Horizontally first, only over the rows the vertical pass reads.
    const int64_t y0 = vert->first.front();
    const int64_t rows = static_cast<int64_t>(vert->first.back()) + vert->count.back() - y0;
    uint8_t* temp = scratch.get(Scratch::kTemp, rows * out_w);  // (rows, out_w)
    horizontal_pass(src + y0 * in_w, rows, in_w, *horiz, out_w, temp, scratch);
    resample_rows(temp, out_w, y0, out_w, *vert, dst, out_w);
}

}  // namespace icas
