// ORB similarity on the device: OpenCV's cross-checked brute-force Hamming
// matching and the ratio rule of pair_math.hpp, one block per pair of images.
// Each thread takes query descriptors i of the first image: its first
// nearest train descriptor s (smallest distance, then lowest index), then
// whether i is the first nearest query of s (mutual first neighbours). The
// distances of the matches go into a shared histogram (0..256 bits), from
// which count, largest distance and good matches follow exactly.
#include "icas/pair_math.hpp"
#include "tiles.cuh"

namespace icas::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kWords = 4;  // 64-bit words per 32-byte descriptor
constexpr int kBins = 257;

struct Set {
    const unsigned long long* desc;  // (total, 4)
    const int64_t* off;              // (n + 1,)
};

__device__ inline int distance(const unsigned long long* p, const unsigned long long* q) {
    return __popcll(p[0] ^ q[0]) + __popcll(p[1] ^ q[1]) + __popcll(p[2] ^ q[2]) +
           __popcll(p[3] ^ q[3]);
}

// Key (distance << 32 | index) of the first minimum of `q` over rows (count, 4).
__device__ inline unsigned long long first_min(const unsigned long long* q,
                                               const unsigned long long* rows, int64_t count) {
    unsigned long long best = ~0ULL;
    for (int64_t k = 0; k < count; ++k) {
        const unsigned long long key =
            (static_cast<unsigned long long>(distance(q, rows + k * kWords)) << 32) |
            static_cast<unsigned long long>(k);
        best = key < best ? key : best;
    }
    return best;
}

__global__ void orb_tile(Set a, Set b, Tile t, double* out) {
    const int64_t r = blockIdx.y, c = blockIdx.x;
    const int64_t i = t.i0 + r, j = t.j0 + c;
    const unsigned long long* qa = a.desc + a.off[i] * kWords;
    const unsigned long long* tb = b.desc + b.off[j] * kWords;
    const int64_t na = a.off[i + 1] - a.off[i], nb = b.off[j + 1] - b.off[j];
    __shared__ unsigned hist[kBins];
    for (int k = threadIdx.x; k < kBins; k += blockDim.x) hist[k] = 0;
    __syncthreads();
    if (nb > 0) {
        for (int64_t q = threadIdx.x; q < na; q += blockDim.x) {
            const unsigned long long row = first_min(qa + q * kWords, tb, nb);
            const int64_t s = static_cast<int64_t>(row & 0xffffffffULL);
            const unsigned long long col = first_min(tb + s * kWords, qa, na);
            if (static_cast<int64_t>(col & 0xffffffffULL) == q) atomicAdd(&hist[row >> 32], 1u);
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int64_t count = 0, max_d = 0;
        for (int d = 0; d < kBins; ++d)
            if (hist[d] > 0) {
                count += hist[d];
                max_d = d;
            }
        int64_t good = 0;
        if (count > 0 && max_d > 0)
            for (int d = 0; d < kBins; ++d)
                if (pair_math::orb_good(d, max_d)) good += hist[d];
        out[r * t.mj + c] = pair_math::orb_ratio(good, count, max_d);
    }
}

struct Fill {
    Set a, b;
    void operator()(const Tile& t, double* out) const {
        const dim3 grid(static_cast<unsigned>(t.mj), static_cast<unsigned>(t.mi));
        orb_tile<<<grid, kThreads>>>(a, b, t, out);
        check_launch("orb_tile");
    }
};

// Descriptors and offsets of one set on the device, copied once. The
// descriptors are copied into 8-byte aligned words (cudaMalloc aligns).
struct Images {
    DeviceArray<unsigned long long> desc;
    DeviceArray<int64_t> off;
    Images(const uint8_t* d, const int64_t* o, int64_t n, int64_t total)
        : desc(total * kWords), off(o, n + 1) {
        if (total > 0)
            check(
                cudaMemcpy(desc.get(), d, static_cast<size_t>(total) * 32, cudaMemcpyHostToDevice),
                "copy descriptors to device");
    }
    Set view() const { return {desc.get(), off.get()}; }
};

void check_offsets(const int64_t* off, int64_t n, int64_t total) {
    if (n < 0 || off[0] != 0 || off[n] != total)
        throw std::invalid_argument("offsets must start at 0 and end at the number of descriptors");
    for (int64_t k = 0; k < n; ++k)
        if (off[k + 1] < off[k]) throw std::invalid_argument("offsets must never decrease");
}

constexpr int64_t kMaxSide = 4096;  // grid y limit of block-per-pair kernels

}  // namespace

void orb_matrix(const uint8_t* descriptors, const int64_t* offsets, int64_t n, int64_t total,
                double* out) {
    check_offsets(offsets, n, total);
    if (n <= 0) return;
    const Images im(descriptors, offsets, n, total);
    dense<double>(n, n, true, out, Fill{im.view(), im.view()}, kMaxSide);
}

void orb_cross(const uint8_t* desc_a, const int64_t* off_a, int64_t na, int64_t total_a,
               const uint8_t* desc_b, const int64_t* off_b, int64_t nb, int64_t total_b,
               double* out) {
    check_offsets(off_a, na, total_a);
    check_offsets(off_b, nb, total_b);
    if (na <= 0 || nb <= 0) return;
    const Images ia(desc_a, off_a, na, total_a), ib(desc_b, off_b, nb, total_b);
    dense<double>(na, nb, false, out, Fill{ia.view(), ib.view()}, kMaxSide);
}

PairList orb_pairs(const uint8_t* descriptors, const int64_t* offsets, int64_t n, int64_t total,
                   double threshold, const int64_t* groups) {
    check_offsets(offsets, n, total);
    if (n < 2) return {};
    const Images im(descriptors, offsets, n, total);
    return pairs<double>(n, groups, Fill{im.view(), im.view()}, KeepAtLeast<double>{threshold},
                         kMaxSide);
}

}  // namespace icas::cuda
