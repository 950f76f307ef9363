// MinHash signature kernels: count equal uint64 / uint32 slots per pair. A
// hand-written AVX-512 tile (eight pairs per pass over a signature) runs where
// the CPU has AVX-512F; elsewhere the plain loops are compiled as AVX2 /
// baseline clones (ICAS_CLONES), where the compare-equal of lanes vectorises
// directly.
#include "icas/minhash.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "icas/pair_math.hpp"
#include "icas/parallel.hpp"
#include "icas/simd.hpp"
#include "icas/tiled.hpp"
#include "icas/union_find.hpp"

#ifdef ICAS_X86
#include <immintrin.h>
#endif

namespace icas {

namespace {

// Threshold forms count in chunks of this many slots and stop a pair once
// even all remaining slots equal could not reach the minimum count.
constexpr int64_t kChunk = 32;

template <class T>
inline int64_t count_equal(const T* a, const T* b, int64_t k) {
    int64_t c = 0;
    for (int64_t t = 0; t < k; ++t) c += a[t] == b[t];
    return c;
}

// Count with early exit: exact when the result is >= min_count, otherwise
// only guaranteed to be < min_count.
template <class T>
inline int64_t count_bounded(const T* a, const T* b, int64_t k, int64_t min_count) {
    int64_t c = 0;
    for (int64_t t0 = 0; t0 < k; t0 += kChunk) {
        const int64_t n = std::min(kChunk, k - t0);
        int64_t cc = 0;
        for (int64_t t = 0; t < n; ++t) cc += a[t0 + t] == b[t0 + t];
        c += cc;
        if (c + (k - t0 - n) < min_count) return c;
    }
    return c;
}

// Equal slots of a against four consecutive signatures b + r * k: each slot
// of a is loaded once for four pairs; the compiler vectorises over the slots
// with one accumulator per pair.
template <class T>
inline void count4(const T* a, const T* b, int64_t k, int32_t* out) {
    const T *b0 = b, *b1 = b + k, *b2 = b + 2 * k, *b3 = b + 3 * k;
    int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    for (int64_t t = 0; t < k; ++t) {
        const T x = a[t];
        c0 += x == b0[t];
        c1 += x == b1[t];
        c2 += x == b2[t];
        c3 += x == b3[t];
    }
    out[0] = static_cast<int32_t>(c0);
    out[1] = static_cast<int32_t>(c1);
    out[2] = static_cast<int32_t>(c2);
    out[3] = static_cast<int32_t>(c3);
}

// counts[i * ldo + j] for a tile of A (na, k) against B (nbr, k); with
// min_count > 0 the counts below min_count are only bounds (see above).
template <class T>
inline void count_tile_impl(const T* A, int64_t na, const T* B, int64_t nbr, int64_t k,
                            int64_t min_count, int32_t* out, int64_t ldo) {
    for (int64_t i = 0; i < na; ++i) {
        const T* a = A + i * k;
        int32_t* o = out + i * ldo;
        if (min_count <= 0) {
            int64_t j = 0;
            for (; j + 4 <= nbr; j += 4) count4(a, B + j * k, k, o + j);
            for (; j < nbr; ++j) o[j] = static_cast<int32_t>(count_equal(a, B + j * k, k));
        } else {
            for (int64_t j = 0; j < nbr; ++j)
                o[j] = static_cast<int32_t>(count_bounded(a, B + j * k, k, min_count));
        }
    }
}

// Clones cannot be templates: one entry point per slot type.
ICAS_CLONES void count_tile_generic(const uint64_t* A, int64_t na, const uint64_t* B, int64_t nbr,
                                    int64_t k, int64_t min_count, int32_t* out, int64_t ldo) {
    count_tile_impl(A, na, B, nbr, k, min_count, out, ldo);
}
ICAS_CLONES void count_tile_generic(const uint32_t* A, int64_t na, const uint32_t* B, int64_t nbr,
                                    int64_t k, int64_t min_count, int32_t* out, int64_t ldo) {
    count_tile_impl(A, na, B, nbr, k, min_count, out, ldo);
}
#ifdef ICAS_X86
#define ICAS_T512 __attribute__((target("avx512f")))

// The maskz forms with a full mask are the plain instructions; the plain
// intrinsics trip a false -Wmaybe-uninitialized in GCC 12 headers.
constexpr __mmask8 kAll = 0xFF;

// Sums of eight accumulators of int64 lanes, as eight int64 lanes [s0 .. s7].
ICAS_T512 inline __m512i hsum8(const __m512i* acc) {
    __m512i t[4];
    for (int p = 0; p < 4; ++p)
        t[p] = _mm512_add_epi64(_mm512_maskz_unpacklo_epi64(kAll, acc[2 * p], acc[2 * p + 1]),
                                _mm512_maskz_unpackhi_epi64(kAll, acc[2 * p], acc[2 * p + 1]));
    __m512i v[2];
    for (int q = 0; q < 2; ++q)
        v[q] = _mm512_add_epi64(_mm512_maskz_shuffle_i64x2(kAll, t[2 * q], t[2 * q + 1], 0x88),
                                _mm512_maskz_shuffle_i64x2(kAll, t[2 * q], t[2 * q + 1], 0xDD));
    return _mm512_add_epi64(_mm512_maskz_shuffle_i64x2(kAll, v[0], v[1], 0x88),
                            _mm512_maskz_shuffle_i64x2(kAll, v[0], v[1], 0xDD));
}

// Per-pair counts of eight accumulators (int32 lanes for uint32 slots).
template <class T>
ICAS_T512 inline __m512i counts8(const __m512i* acc) {
    if constexpr (sizeof(T) == 8) {
        return hsum8(acc);
    } else {
        __m512i wide[8];
        const __m512i low = _mm512_set1_epi64(0xFFFFFFFF);
        for (int r = 0; r < 8; ++r)
            wide[r] = _mm512_add_epi64(_mm512_and_si512(acc[r], low),
                                       _mm512_maskz_srli_epi64(kAll, acc[r], 32));
        return hsum8(wide);
    }
}

// Counts equal lanes of x and y (those under `lanes`) into acc: a compare
// gives a lane mask and a masked add counts it.
template <class T>
ICAS_T512 inline __m512i add_equal(__m512i acc, __m512i x, __m512i y, unsigned lanes) {
    if constexpr (sizeof(T) == 8) {
        const __mmask8 m = _mm512_mask_cmpeq_epi64_mask(static_cast<__mmask8>(lanes), x, y);
        return _mm512_mask_add_epi64(acc, m, acc, _mm512_set1_epi64(1));
    } else {
        const __mmask16 m = _mm512_mask_cmpeq_epi32_mask(static_cast<__mmask16>(lanes), x, y);
        return _mm512_mask_add_epi32(acc, m, acc, _mm512_set1_epi32(1));
    }
}

template <class T>
ICAS_T512 inline __m512i load_lanes(const T* p, unsigned lanes) {
    if constexpr (sizeof(T) == 8)
        return _mm512_maskz_loadu_epi64(static_cast<__mmask8>(lanes), p);
    else
        return _mm512_maskz_loadu_epi32(static_cast<__mmask16>(lanes), p);
}

// Equal slots of a against eight consecutive signatures b + r * k: each
// vector of a is loaded once for eight pairs (two instructions per vector
// and pair). With min_count > 0 the eight stop together once none can reach
// it.
template <class T>
ICAS_T512 inline void count8_avx512(const T* a, const T* b, int64_t k, int64_t min_count,
                                    int32_t* out) {
    constexpr int64_t W = 64 / sizeof(T);  // slots per vector
    constexpr unsigned kFull = (1u << W) - 1u;
    __m512i acc[8];
    for (int r = 0; r < 8; ++r) acc[r] = _mm512_setzero_si512();
    int64_t t = 0;
    while (t + W <= k) {
        const int64_t stop = std::min(k - W + 1, t + kChunk);
        for (; t < stop; t += W) {
            const __m512i x = _mm512_loadu_si512(a + t);
            for (int r = 0; r < 8; ++r)
                acc[r] = add_equal<T>(acc[r], x, _mm512_loadu_si512(b + r * k + t), kFull);
        }
        if (min_count > 0 && t < k) {
            // Even if every remaining slot were equal, would any pair reach min_count?
            const __m512i best = _mm512_add_epi64(counts8<T>(acc), _mm512_set1_epi64(k - t));
            if (_mm512_cmplt_epi64_mask(best, _mm512_set1_epi64(min_count)) == kAll) {
                t = k;
                break;
            }
        }
    }
    if (t < k) {
        const unsigned tail = (1u << (k - t)) - 1u;
        const __m512i x = load_lanes(a + t, tail);
        for (int r = 0; r < 8; ++r)
            acc[r] = add_equal<T>(acc[r], x, load_lanes(b + r * k + t, tail), tail);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                        _mm512_maskz_cvtepi64_epi32(kAll, counts8<T>(acc)));
}

template <class T>
ICAS_T512 __attribute__((flatten)) void count_tile_avx512(const T* A, int64_t na, const T* B,
                                                          int64_t nbr, int64_t k, int64_t min_count,
                                                          int32_t* out, int64_t ldo) {
    for (int64_t i = 0; i < na; ++i) {
        const T* a = A + i * k;
        int32_t* o = out + i * ldo;
        int64_t j = 0;
        for (; j + 8 <= nbr; j += 8) count8_avx512(a, B + j * k, k, min_count, o + j);
        for (; j < nbr; ++j) o[j] = static_cast<int32_t>(count_bounded(a, B + j * k, k, min_count));
    }
}
#endif

template <class T>
using TileFn = void (*)(const T*, int64_t, const T*, int64_t, int64_t, int64_t, int32_t*, int64_t);

bool cpu_runs(MinhashKernel k) {
#ifdef ICAS_X86
    __builtin_cpu_init();
    if (k == MinhashKernel::Avx512) return __builtin_cpu_supports("avx512f");
    return true;
#else
    return k != MinhashKernel::Avx512;
#endif
}

// The hand-written AVX-512 tile where the CPU has it (or when asked), else
// the clones.
template <class T>
TileFn<T> tile_for(MinhashKernel k) {
    if (k == MinhashKernel::Auto)
        k = cpu_runs(MinhashKernel::Avx512) ? MinhashKernel::Avx512 : MinhashKernel::Generic;
    if (!cpu_runs(k))
        throw std::invalid_argument("this CPU cannot run the requested MinHash kernel");
#ifdef ICAS_X86
    if (k == MinhashKernel::Avx512) return count_tile_avx512<T>;
#endif
    return static_cast<TileFn<T>>(count_tile_generic);
}

void check_sizes(int64_t k, std::initializer_list<int64_t> counts) {
    for (int64_t c : counts)
        if (c < 0) throw std::invalid_argument("number of signatures must be >= 0");
    if (k < 1 || k > std::numeric_limits<int32_t>::max())
        throw std::invalid_argument("signature length k must be in [1, 2^31), got " +
                                    std::to_string(k));
}

// Threads for `pairs` pairs of `bytes` bytes each: below about 100 us of work
// one thread does it, as waking the others costs more than it saves.
int threads_for(int64_t pairs, int64_t bytes, int n_threads) {
    constexpr double kMinParallelBytes = 1 << 20;
    if (static_cast<double>(pairs) * static_cast<double>(bytes) < kMinParallelBytes) return 1;
    return resolve_threads(n_threads);
}

// Rows per tile: a tile of signatures stays in L1 (32 KiB), between 8 and
// 256 rows.
template <class T>
int64_t tile_rows(int64_t k) {
    return std::clamp<int64_t>(32768 / (static_cast<int64_t>(sizeof(T)) * k), 8, 256);
}

std::vector<double> similarity_table(int64_t k) {
    std::vector<double> v(static_cast<size_t>(k + 1));
    for (int64_t c = 0; c <= k; ++c) v[c] = pair_math::minhash_score(c, k);
    return v;
}

}  // namespace

std::vector<std::string> minhash_kernels() {
    std::vector<std::string> names;
    if (cpu_runs(MinhashKernel::Avx512)) names.emplace_back("avx512");
    names.emplace_back("generic");
    return names;
}

MinhashKernel minhash_kernel_from_name(const std::string& name) {
    MinhashKernel k;
    if (name == "auto") return MinhashKernel::Auto;
    if (name == "avx512") {
        k = MinhashKernel::Avx512;
    } else if (name == "generic") {
        k = MinhashKernel::Generic;
    } else {
        throw std::invalid_argument("unknown MinHash kernel '" + name + "'");
    }
    if (!cpu_runs(k))
        throw std::invalid_argument("this CPU cannot run the MinHash kernel '" + name + "'");
    return k;
}

int64_t minhash_min_count(double threshold, int64_t k) {
    if (k < 1) throw std::invalid_argument("k must be >= 1");
    const auto ok = [&](int64_t c) { return pair_math::minhash_score(c, k) >= threshold; };
    double est = std::ceil(threshold * static_cast<double>(k));
    if (!(est <= static_cast<double>(k + 1))) est = static_cast<double>(k + 1);  // also NaN
    int64_t c = static_cast<int64_t>(std::max(est, 0.0));
    // The similarity is non-decreasing in c in double arithmetic too, so the
    // estimate only needs nudging by the rounding of threshold * k.
    while (c > 0 && ok(c - 1)) --c;
    while (c <= k && !ok(c)) ++c;
    return c;
}

namespace {

template <class S>
void matrix_impl(const S* sigs, int64_t n, int64_t k, double* out, int n_threads,
                 MinhashKernel kernel) {
    check_sizes(k, {n});
    const TileFn<S> count_tile = tile_for<S>(kernel);
    const std::vector<double> sim = similarity_table(k);
    const int64_t T = tile_rows<S>(k);
    const int64_t nt = (n + T - 1) / T;
    std::vector<std::pair<int64_t, int64_t>> tiles;
    for (int64_t I = 0; I < nt; ++I)
        for (int64_t J = I; J < nt; ++J) tiles.emplace_back(I, J);
    const int64_t ntiles = static_cast<int64_t>(tiles.size());
    const int threads = threads_for(n * n / 2, k * static_cast<int64_t>(sizeof(S)), n_threads);
#pragma omp parallel num_threads(threads)
    {
        std::vector<int32_t> counts(static_cast<size_t>(T * T));
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < ntiles; ++t) {
            const int64_t i0 = tiles[t].first * T, j0 = tiles[t].second * T;
            const int64_t ni = std::min(T, n - i0), nj = std::min(T, n - j0);
            count_tile(sigs + i0 * k, ni, sigs + j0 * k, nj, k, 0, counts.data(), T);
            for (int64_t i = 0; i < ni; ++i)
                for (int64_t j = 0; j < nj; ++j)
                    out[(i0 + i) * n + j0 + j] = sim[counts[i * T + j]];
            if (i0 != j0) {
                for (int64_t j = 0; j < nj; ++j)
                    for (int64_t i = 0; i < ni; ++i)
                        out[(j0 + j) * n + i0 + i] = sim[counts[i * T + j]];
            }
        }
    }
}

template <class S>
void cross_impl(const S* a, int64_t na, const S* b, int64_t nb, int64_t k, double* out,
                int n_threads, MinhashKernel kernel) {
    check_sizes(k, {na, nb});
    const TileFn<S> count_tile = tile_for<S>(kernel);
    const std::vector<double> sim = similarity_table(k);
    const int64_t T = tile_rows<S>(k);
    const int64_t nti = (na + T - 1) / T, ntj = (nb + T - 1) / T;
    const int64_t ntiles = nti * ntj;
    const int threads = threads_for(na * nb, k * static_cast<int64_t>(sizeof(S)), n_threads);
#pragma omp parallel num_threads(threads)
    {
        std::vector<int32_t> counts(static_cast<size_t>(T * T));
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < ntiles; ++t) {
            const int64_t i0 = (t / ntj) * T, j0 = (t % ntj) * T;
            const int64_t ni = std::min(T, na - i0), nj = std::min(T, nb - j0);
            count_tile(a + i0 * k, ni, b + j0 * k, nj, k, 0, counts.data(), T);
            for (int64_t i = 0; i < ni; ++i)
                for (int64_t j = 0; j < nj; ++j)
                    out[(i0 + i) * nb + j0 + j] = sim[counts[i * T + j]];
        }
    }
}

template <class S>
Edges pairs_impl(const S* sigs, int64_t n, int64_t k, const PairOptions& opt,
                 MinhashKernel kernel) {
    check_sizes(k, {n});
    const TileFn<S> count_tile = tile_for<S>(kernel);
    const int64_t min_count = minhash_min_count(opt.threshold, k);
    if (min_count > k) return Edges{};
    return tiled::pairs(
        n, tile_rows<S>(k),
        threads_for(n * n / 2, k * static_cast<int64_t>(sizeof(S)), opt.n_threads), opt,
        [&](int64_t i0, int64_t ni, int64_t j0, int64_t nj, int32_t* out, int64_t ld) {
            count_tile(sigs + i0 * k, ni, sigs + j0 * k, nj, k, min_count, out, ld);
        },
        [min_count](int32_t c) { return c >= min_count; },
        [k](int32_t c) {
            return static_cast<float>(static_cast<double>(c) / static_cast<double>(k));
        });
}

template <class S>
void components_impl(const S* sigs, int64_t n, int64_t k, const PairOptions& opt, int64_t* labels,
                     MinhashKernel kernel) {
    check_sizes(k, {n});
    const TileFn<S> count_tile = tile_for<S>(kernel);
    const int64_t min_count = minhash_min_count(opt.threshold, k);
    if (min_count > k) {  // no pair passes: every signature is its own component
        std::iota(labels, labels + n, int64_t{0});
        return;
    }
    tiled::components(
        n, tile_rows<S>(k),
        threads_for(n * n / 2, k * static_cast<int64_t>(sizeof(S)), opt.n_threads), opt,
        [&](int64_t i0, int64_t ni, int64_t j0, int64_t nj, int32_t* out, int64_t ld) {
            count_tile(sigs + i0 * k, ni, sigs + j0 * k, nj, k, min_count, out, ld);
        },
        [min_count](int32_t c) { return c >= min_count; }, labels);
}

}  // namespace

#define ICAS_MINHASH_OVERLOADS(S)                                                              \
    void minhash_matrix(const S* sigs, int64_t n, int64_t k, double* out, int n_threads,       \
                        MinhashKernel kernel) {                                                \
        matrix_impl(sigs, n, k, out, n_threads, kernel);                                       \
    }                                                                                          \
    void minhash_cross(const S* a, int64_t na, const S* b, int64_t nb, int64_t k, double* out, \
                       int n_threads, MinhashKernel kernel) {                                  \
        cross_impl(a, na, b, nb, k, out, n_threads, kernel);                                   \
    }                                                                                          \
    Edges minhash_pairs(const S* sigs, int64_t n, int64_t k, const PairOptions& opt,           \
                        MinhashKernel kernel) {                                                \
        return pairs_impl(sigs, n, k, opt, kernel);                                            \
    }                                                                                          \
    void minhash_components(const S* sigs, int64_t n, int64_t k, const PairOptions& opt,       \
                            int64_t* labels, MinhashKernel kernel) {                           \
        components_impl(sigs, n, k, opt, labels, kernel);                                      \
    }
ICAS_MINHASH_OVERLOADS(uint64_t)
ICAS_MINHASH_OVERLOADS(uint32_t)
#undef ICAS_MINHASH_OVERLOADS

}  // namespace icas
