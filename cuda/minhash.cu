// MinHash similarity on the device: one thread per pair counts equal slots;
// the value is count / k in double (pair_math.hpp), as on the CPU.
#include "icas/pair_math.hpp"
#include "tiles.cuh"

namespace icas::cuda {

namespace {

template <class S>
__global__ void minhash_tile(const S* a, const S* b, int64_t k, Tile t, double* out) {
    const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t r = blockIdx.y * static_cast<int64_t>(blockDim.y) + threadIdx.y;
    if (r >= t.mi || c >= t.mj) return;
    const S* x = a + (t.i0 + r) * k;
    const S* y = b + (t.j0 + c) * k;
    int64_t count = 0;
    for (int64_t s = 0; s < k; ++s) count += x[s] == y[s];
    out[r * t.mj + c] = pair_math::minhash_score(count, k);
}

template <class S>
struct Fill {
    const S* a;
    const S* b;
    int64_t k;
    void operator()(const Tile& t, double* out) const {
        const dim3 block(32, 8);
        minhash_tile<S><<<pair_grid(t, block), block>>>(a, b, k, t, out);
        check_launch("minhash_tile");
    }
};

void check_k(int64_t k) {
    if (k < 1) throw std::invalid_argument("k must be >= 1");
}

template <class S>
void matrix_impl(const S* sigs, int64_t n, int64_t k, double* out) {
    check_k(k);
    if (n <= 0) return;
    DeviceArray<S> d(sigs, n * k);
    dense<double>(n, n, true, out, Fill<S>{d.get(), d.get(), k});
}

template <class S>
void cross_impl(const S* a, int64_t na, const S* b, int64_t nb, int64_t k, double* out) {
    check_k(k);
    if (na <= 0 || nb <= 0) return;
    DeviceArray<S> da(a, na * k), db(b, nb * k);
    dense<double>(na, nb, false, out, Fill<S>{da.get(), db.get(), k});
}

template <class S>
PairList pairs_impl(const S* sigs, int64_t n, int64_t k, double threshold, const int64_t* groups) {
    check_k(k);
    if (n < 2) return {};
    DeviceArray<S> d(sigs, n * k);
    return pairs<double>(n, groups, Fill<S>{d.get(), d.get(), k}, KeepAtLeast<double>{threshold});
}

}  // namespace

void minhash_matrix(const uint32_t* s, int64_t n, int64_t k, double* out) {
    matrix_impl(s, n, k, out);
}
void minhash_matrix(const uint64_t* s, int64_t n, int64_t k, double* out) {
    matrix_impl(s, n, k, out);
}
void minhash_cross(const uint32_t* a, int64_t na, const uint32_t* b, int64_t nb, int64_t k,
                   double* out) {
    cross_impl(a, na, b, nb, k, out);
}
void minhash_cross(const uint64_t* a, int64_t na, const uint64_t* b, int64_t nb, int64_t k,
                   double* out) {
    cross_impl(a, na, b, nb, k, out);
}
PairList minhash_pairs(const uint32_t* s, int64_t n, int64_t k, double threshold,
                       const int64_t* groups) {
    return pairs_impl(s, n, k, threshold, groups);
}
PairList minhash_pairs(const uint64_t* s, int64_t n, int64_t k, double threshold,
                       const int64_t* groups) {
    return pairs_impl(s, n, k, threshold, groups);
}

}  // namespace icas::cuda
