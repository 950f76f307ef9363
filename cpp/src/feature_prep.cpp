#include "icas/feature_prep.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <vector>

#include "icas/simd.hpp"

namespace icas {

namespace {

// Values per block of the selection: one vectorised maximum per block lets
// the scalar heap logic skip the (nearly all) blocks that cannot enter.
constexpr int64_t kSelectBlock = 64;

// Largest value of r[lo, hi), NaN counted as -inf (a NaN never enters the
// selection, and must not hide a block's real maximum either).
ICAS_CLONES
float block_max(const float* __restrict r, int64_t lo, int64_t hi) {
    float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
    for (int64_t i = lo; i < hi; ++i) {
        const float v = r[i];
        m = std::max(m, v == v ? v : -std::numeric_limits<float>::infinity());
    }
    return m;
}

}  // namespace

int64_t strongest_positive(const float* r, int64_t size, int64_t k, int64_t* out) {
    if (k <= 0 || size <= 0) return 0;
    // The k largest positive values seen so far, as a min-heap: its top ends
    // as the k-th largest value (counted with repeats), in one pass. A block
    // whose maximum cannot beat the threshold is skipped whole.
    thread_local std::vector<float> heap, maxima;
    thread_local std::vector<int64_t> idx;
    heap.clear();
    const int64_t blocks = (size + kSelectBlock - 1) / kSelectBlock;
    maxima.resize(static_cast<size_t>(blocks));
    const auto greater = std::greater<float>();
    // Values must beat thr to enter: 0 until the heap is full, then its top.
    float thr = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t lo = b * kSelectBlock, hi = std::min(size, lo + kSelectBlock);
        maxima[b] = block_max(r, lo, hi);
        if (!(maxima[b] > thr)) continue;
        for (int64_t i = lo; i < hi; ++i) {
            const float v = r[i];
            if (!(v > thr)) continue;
            if (static_cast<int64_t>(heap.size()) < k) {
                heap.push_back(v);
                std::push_heap(heap.begin(), heap.end(), greater);
                if (static_cast<int64_t>(heap.size()) == k) thr = heap.front();
            } else {
                std::pop_heap(heap.begin(), heap.end(), greater);
                heap.back() = v;
                std::push_heap(heap.begin(), heap.end(), greater);
                thr = heap.front();
            }
        }
    }
    if (heap.empty()) return 0;
    // Everything at least as strong as the k-th strongest (ties included, or
    // every positive value when there are at most k): the values a full
    // stable sort would put first. Only blocks reaching that bound are read.
    idx.clear();
    const bool all_positive = static_cast<int64_t>(heap.size()) < k;
    for (int64_t b = 0; b < blocks; ++b) {
        if (all_positive ? !(maxima[b] > 0.0f) : !(maxima[b] >= thr)) continue;
        const int64_t lo = b * kSelectBlock, hi = std::min(size, lo + kSelectBlock);
        for (int64_t i = lo; i < hi; ++i)
            if (all_positive ? r[i] > 0.0f : r[i] >= thr) idx.push_back(i);
    }
    std::stable_sort(idx.begin(), idx.end(), [r](int64_t a, int64_t b) { return r[a] > r[b]; });
    const int64_t m = std::min<int64_t>(k, static_cast<int64_t>(idx.size()));
    std::copy(idx.begin(), idx.begin() + m, out);
    return m;
}

ICAS_CLONES
uint64_t dct_row_fold(const uint8_t* px, int64_t n, double* sum, double* diff) {
    const int64_t h = n / 2;
    uint64_t total = 0;
    for (int64_t i = 0; i < h; ++i) {
        const uint8_t* top = px + i * n;
        const uint8_t* bottom = px + (n - 1 - i) * n;
        double* s = sum + i * n;
        double* d = diff + i * n;
        uint32_t row = 0;
        for (int64_t c = 0; c < n; ++c) {
            const int32_t a = top[c], b = bottom[c];
            s[c] = static_cast<double>(a + b);
            d[c] = static_cast<double>(a - b);
            row += static_cast<uint32_t>(a + b);
        }
        total += row;
    }
    return total;
}

ICAS_CLONES
uint64_t dct_row_fold4(const uint8_t* px, int64_t n, double* ss, double* sd, double* diff) {
    const int64_t h = n / 2, q = n / 4;
    uint64_t total = 0;
    for (int64_t i = 0; i < q; ++i) {
        // rows i and h - 1 - i of the sum, from the four rows they fold
        // (__restrict: uint8_t may alias anything, and without it the
        // compiler gives up vectorising eight streams)
        const uint8_t* __restrict a = px + i * n;            // row i
        const uint8_t* __restrict b = px + (n - 1 - i) * n;  // its mirror
        const uint8_t* __restrict c = px + (h - 1 - i) * n;  // row h - 1 - i
        const uint8_t* __restrict d = px + (h + i) * n;      // its mirror
        double* __restrict s1 = ss + i * n;
        double* __restrict s2 = sd + i * n;
        double* __restrict d1 = diff + i * n;
        double* __restrict d2 = diff + (h - 1 - i) * n;
        for (int64_t k = 0; k < n; ++k) {
            d1[k] = static_cast<double>(static_cast<int32_t>(a[k]) - b[k]);
            d2[k] = static_cast<double>(static_cast<int32_t>(c[k]) - d[k]);
        }
        uint32_t row = 0;
        for (int64_t k = 0; k < n; ++k) {
            const int32_t u = static_cast<int32_t>(a[k]) + b[k];
            const int32_t v = static_cast<int32_t>(c[k]) + d[k];
            s1[k] = static_cast<double>(u + v);
            s2[k] = static_cast<double>(u - v);
            row += static_cast<uint32_t>(u + v);
        }
        total += row;
    }
    return total;
}

}  // namespace icas
