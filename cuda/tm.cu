// Template matching (equal sizes) on the device: exact integer Gram tiles
// (uint8 products summed in uint32 runs, flushed to uint64 before they could
// overflow) and squared norms, then 1 - TM_SQDIFF_NORMED by pair_math.hpp.
// (cuBLAS has no uint8 GEMM: its 8-bit integer GEMM is signed int8.)
#include "icas/pair_math.hpp"
#include "tiles.cuh"

namespace icas::cuda {

namespace {

constexpr int kSide = 16;         // block of kSide x kSide pairs, one per thread
constexpr int kDepth = 64;        // bytes of each row staged in shared memory per step
constexpr int kFlushSteps = 512;  // 512 * 64 = 32768 products: 255^2 * 32768 < 2^32
static_assert(255ull * 255ull * kDepth * kFlushSteps < (1ull << 32), "uint32 run overflows");

// Squared norm of each row (one block per row) and its square root.
__global__ void norms_kernel(const uint8_t* x, int64_t len, int64_t* norm, double* root) {
    const uint8_t* row = x + blockIdx.x * len;
    unsigned long long s = 0;
    for (int64_t k = threadIdx.x; k < len; k += blockDim.x) {
        const unsigned v = row[k];
        s += v * v;
    }
    __shared__ unsigned long long part[256];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        norm[blockIdx.x] = static_cast<int64_t>(part[0]);
        root[blockIdx.x] = sqrt(static_cast<double>(part[0]));
    }
}

template <class T>
__global__ void gram_tile(const uint8_t* a, const uint8_t* b, int64_t len, Tile t,
                          const int64_t* na, const double* ra, const int64_t* nb, const double* rb,
                          T* out) {
    __shared__ uint8_t sa[kSide][kDepth + 4];
    __shared__ uint8_t sb[kSide][kDepth + 4];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t rbase = blockIdx.y * static_cast<int64_t>(kSide);
    const int64_t cbase = blockIdx.x * static_cast<int64_t>(kSide);
    unsigned long long total = 0;
    unsigned run = 0;
    int steps = 0;
    for (int64_t k0 = 0; k0 < len; k0 += kDepth) {
        for (int e = ty * kSide + tx; e < kSide * kDepth; e += kSide * kSide) {
            const int rr = e / kDepth, kk = e % kDepth;
            const int64_t k = k0 + kk;
            const int64_t ra_row = rbase + rr, rb_row = cbase + rr;
            sa[rr][kk] = (ra_row < t.mi && k < len) ? a[(t.i0 + ra_row) * len + k] : 0;
            sb[rr][kk] = (rb_row < t.mj && k < len) ? b[(t.j0 + rb_row) * len + k] : 0;
        }
        __syncthreads();
#pragma unroll 16
        for (int kk = 0; kk < kDepth; ++kk)
            run += static_cast<unsigned>(sa[ty][kk]) * static_cast<unsigned>(sb[tx][kk]);
        __syncthreads();
        if (++steps == kFlushSteps) {
            total += run;
            run = 0;
            steps = 0;
        }
    }
    total += run;
    const int64_t r = rbase + ty, c = cbase + tx;
    if (r >= t.mi || c >= t.mj) return;
    const int64_t i = t.i0 + r, j = t.j0 + c;
    out[r * t.mj + c] = static_cast<T>(
        pair_math::tm_score(na[i], nb[j], ra[i], rb[j], static_cast<int64_t>(total)));
}

// Rows of one set on the device with their norms, copied and computed once.
struct Rows {
    DeviceArray<uint8_t> x;
    DeviceArray<int64_t> norm;
    DeviceArray<double> root;
    Rows(const uint8_t* host, int64_t n, int64_t len) : x(host, n * len), norm(n), root(n) {
        norms_kernel<<<static_cast<unsigned>(n), 256>>>(x.get(), len, norm.get(), root.get());
        check_launch("norms_kernel");
    }
};

template <class T>
struct Fill {
    const Rows* a;
    const Rows* b;
    int64_t len;
    void operator()(const Tile& t, T* out) const {
        const dim3 block(kSide, kSide);
        gram_tile<T><<<pair_grid(t, block), block>>>(a->x.get(), b->x.get(), len, t, a->norm.get(),
                                                     a->root.get(), b->norm.get(), b->root.get(),
                                                     out);
        check_launch("gram_tile");
    }
};

void check_len(int64_t len) {
    if (len < 1) throw std::invalid_argument("images must have at least one value each");
}

}  // namespace

void tm_matrix(const uint8_t* x, int64_t n, int64_t len, float* out) {
    check_len(len);
    if (n <= 0) return;
    const Rows rows(x, n, len);
    dense<float>(n, n, true, out, Fill<float>{&rows, &rows, len});
}

void tm_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t len, float* out) {
    check_len(len);
    if (na <= 0 || nb <= 0) return;
    const Rows ra(a, na, len), rb(b, nb, len);
    dense<float>(na, nb, false, out, Fill<float>{&ra, &rb, len});
}

PairList tm_pairs(const uint8_t* x, int64_t n, int64_t len, double threshold,
                  const int64_t* groups) {
    check_len(len);
    if (n < 2) return {};
    const Rows rows(x, n, len);
    return pairs<double>(n, groups, Fill<double>{&rows, &rows, len},
                         KeepAtLeast<double>{threshold});
}

}  // namespace icas::cuda
