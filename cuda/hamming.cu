// Hamming distances of binary codes on the device: one thread per pair,
// 64-bit words with __popcll when rows are a whole number of words, bytes
// otherwise. Distances are exact; threshold forms keep d <= max distance.
#include "icas/pair_math.hpp"
#include "tiles.cuh"

namespace icas::cuda {

namespace {

__global__ void hamming_tile(const uint8_t* a, const uint8_t* b, int64_t n_bytes, Tile t,
                             int32_t* out) {
    const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t r = blockIdx.y * static_cast<int64_t>(blockDim.y) + threadIdx.y;
    if (r >= t.mi || c >= t.mj) return;
    const uint8_t* x = a + (t.i0 + r) * n_bytes;
    const uint8_t* y = b + (t.j0 + c) * n_bytes;
    int32_t d = 0;
    if (n_bytes % 8 == 0) {  // rows start on 8-byte boundaries of the cudaMalloc'd block
        const auto* xw = reinterpret_cast<const unsigned long long*>(x);
        const auto* yw = reinterpret_cast<const unsigned long long*>(y);
        for (int64_t k = 0; k < n_bytes / 8; ++k) d += __popcll(xw[k] ^ yw[k]);
    } else {
        for (int64_t k = 0; k < n_bytes; ++k) d += __popc(static_cast<unsigned>(x[k] ^ y[k]));
    }
    out[r * t.mj + c] = d;
}

struct Fill {
    const uint8_t* a;
    const uint8_t* b;
    int64_t n_bytes;
    void operator()(const Tile& t, int32_t* out) const {
        const dim3 block(32, 8);
        hamming_tile<<<pair_grid(t, block), block>>>(a, b, n_bytes, t, out);
        check_launch("hamming_tile");
    }
};

// 1 - d / bits >= threshold, in the double arithmetic the CPU uses.
struct Keep {
    double threshold;
    int64_t bits;
    __device__ bool operator()(int32_t d, float& s) const {
        const double v = pair_math::hamming_score(d, bits);
        s = static_cast<float>(v);
        return v >= threshold;
    }
};

void check_bytes(int64_t n_bytes) {
    if (n_bytes < 1) throw std::invalid_argument("n_bytes must be >= 1");
}

}  // namespace

void hamming_matrix(const uint8_t* codes, int64_t n, int64_t n_bytes, int32_t* out) {
    check_bytes(n_bytes);
    if (n <= 0) return;
    DeviceArray<uint8_t> d(codes, n * n_bytes);
    dense<int32_t>(n, n, true, out, Fill{d.get(), d.get(), n_bytes});
}

void hamming_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t n_bytes,
                   int32_t* out) {
    check_bytes(n_bytes);
    if (na <= 0 || nb <= 0) return;
    DeviceArray<uint8_t> da(a, na * n_bytes), db(b, nb * n_bytes);
    dense<int32_t>(na, nb, false, out, Fill{da.get(), db.get(), n_bytes});
}

PairList hamming_pairs(const uint8_t* codes, int64_t n, int64_t n_bytes, double threshold,
                       const int64_t* groups) {
    check_bytes(n_bytes);
    if (n < 2) return {};
    DeviceArray<uint8_t> d(codes, n * n_bytes);
    return pairs<int32_t>(n, groups, Fill{d.get(), d.get(), n_bytes}, Keep{threshold, 8 * n_bytes});
}

}  // namespace icas::cuda
