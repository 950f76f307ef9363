// Harris response as OpenCV rounds it (see harris.hpp). Compiled with
// -ffp-contract=off (CMakeLists.txt): a fused multiply-add would round once
// where OpenCV rounds twice.
#include "icas/harris.hpp"

#include <algorithm>
#include <vector>

#include "icas/feature_prep.hpp"
#include "icas/simd.hpp"

namespace icas {

namespace {

// BORDER_REFLECT_101 index of i in [-1, n]: -1 -> 1, n -> n - 2 (0 when n == 1).
inline int64_t reflect(int64_t i, int64_t n) {
    if (n == 1) return 0;
    if (i < 0) return 1;
    if (i >= n) return n - 2;
    return i;
}

// The Sobel products of row y (mx^2, mx my, my^2 with mx, my the unscaled
// 3x3 derivatives, |mx|, |my| <= 1020), summed over columns x - 1 and x:
// the horizontal half of the 2x2 box (column -1 reflects to 1). `p` is
// scratch for 3 w products; `s` receives the 3 w sums (a, b, c planes).
ICAS_CLONES
void row_sums(const uint8_t* __restrict g, int64_t h, int64_t w, int64_t y, int32_t* __restrict p,
              int32_t* __restrict s) {
    const uint8_t* up = g + reflect(y - 1, h) * w;
    const uint8_t* mid = g + y * w;
    const uint8_t* down = g + reflect(y + 1, h) * w;
    int32_t* pa = p;
    int32_t* pb = p + w;
    int32_t* pc = p + 2 * w;
    auto one = [&](int64_t x, int64_t l, int64_t r) {
        const int32_t mx = (up[r] - up[l]) + 2 * (mid[r] - mid[l]) + (down[r] - down[l]);
        const int32_t my = (down[l] - up[l]) + 2 * (down[x] - up[x]) + (down[r] - up[r]);
        pa[x] = mx * mx;
        pb[x] = mx * my;
        pc[x] = my * my;
    };
    one(0, reflect(-1, w), reflect(1, w));
    for (int64_t x = 1; x < w - 1; ++x) {
        const int32_t mx =
            (up[x + 1] - up[x - 1]) + 2 * (mid[x + 1] - mid[x - 1]) + (down[x + 1] - down[x - 1]);
        const int32_t my =
            (down[x - 1] - up[x - 1]) + 2 * (down[x] - up[x]) + (down[x + 1] - up[x + 1]);
        pa[x] = mx * mx;
        pb[x] = mx * my;
        pc[x] = my * my;
    }
    if (w > 1) one(w - 1, w - 2, reflect(w, w));
    const int64_t l0 = reflect(-1, w);
    for (int64_t q = 0; q < 3; ++q) {
        const int32_t* __restrict pq = p + q * w;
        int32_t* __restrict sq = s + q * w;
        sq[0] = pq[l0] + pq[0];
        for (int64_t x = 1; x < w; ++x) sq[x] = pq[x - 1] + pq[x];
    }
}

// One output row: the box sums of rows y - 1 and y as floats (exact), then
// OpenCV's 8-lane formula (ac - bb) - k (t t); the values past the last
// whole block of 8 of the flattened image are redone by the caller.
ICAS_CLONES
void row_response(const int32_t* __restrict prev, const int32_t* __restrict cur, int64_t w,
                  float* __restrict out) {
    constexpr float kInv64 = 1.0f / 64.0f;
    const float k = 0.04f;
    for (int64_t x = 0; x < w; ++x) {
        const float a = static_cast<float>(prev[x] + cur[x]) * kInv64;
        const float b = static_cast<float>(prev[w + x] + cur[w + x]) * kInv64;
        const float c = static_cast<float>(prev[2 * w + x] + cur[2 * w + x]) * kInv64;
        const float t = a + c;
        out[x] = (a * c - b * b) - k * (t * t);
    }
}

}  // namespace

void harris_response(const uint8_t* gray, int64_t h, int64_t w, float* out) {
    const int64_t n = h * w;
    thread_local std::vector<int32_t> buf;
    buf.resize(static_cast<size_t>(9 * w));
    int32_t* p = buf.data();    // products of one row
    int32_t* prev = p + 3 * w;  // horizontal sums of row y - 1 (a, b, c)
    int32_t* cur = p + 6 * w;   // horizontal sums of row y
    const int64_t eights = n - n % 8;
    // The box sums (a, b, c) of the at most 7 values after the last block of
    // 8, which OpenCV computes another way (see harris.hpp).
    float tail[7][3];
    constexpr float kInv64 = 1.0f / 64.0f;
    row_sums(gray, h, w, reflect(-1, h), p, prev);
    for (int64_t y = 0; y < h; ++y) {
        row_sums(gray, h, w, y, p, cur);
        row_response(prev, cur, w, out + y * w);
        for (int64_t o = std::max(eights, y * w); o < (y + 1) * w; ++o) {
            const int64_t x = o - y * w;
            for (int64_t q = 0; q < 3; ++q)
                tail[o - eights][q] = static_cast<float>(prev[q * w + x] + cur[q * w + x]) * kInv64;
        }
        std::swap(prev, cur);
    }
    const float k = 0.04f;
    int64_t j = eights;
    if (n - j >= 4) {  // one block of 4
        for (const int64_t e = j + 4; j < e; ++j) {
            const float a = tail[j - eights][0], b = tail[j - eights][1], c = tail[j - eights][2];
            const float t = a + c;
            out[j] = (a * c - b * b) - (k * t) * t;
        }
    }
    for (; j < n; ++j) {  // one by one, k = 0.04 in double
        const float a = tail[j - eights][0], b = tail[j - eights][1], c = tail[j - eights][2];
        const float d = a * c - b * b;
        const double t = static_cast<double>(a + c);
        out[j] = static_cast<float>(static_cast<double>(d) - 0.04 * t * t);
    }
}

int64_t harris_strongest(const uint8_t* gray, int64_t h, int64_t w, int64_t k, int64_t* out) {
    thread_local std::vector<float> response;
    response.resize(static_cast<size_t>(h * w));
    harris_response(gray, h, w, response.data());
    return strongest_positive(response.data(), h * w, k, out);
}

}  // namespace icas
