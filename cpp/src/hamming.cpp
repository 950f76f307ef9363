// Hamming distance kernels. Each popcount level (AVX-512 VPOPCNTDQ, AVX2,
// hardware popcnt, portable) is a small policy struct whose functions carry
// their own target attribute; the tile loops are templates flattened into one
// entry point per level, so each level gets its own fully inlined code while
// the library itself stays baseline x86-64. The level is picked once per call.
#include "icas/hamming.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "icas/pair_math.hpp"
#include "icas/parallel.hpp"
#include "icas/simd.hpp"
#include "icas/tiled.hpp"
#include "icas/union_find.hpp"

#ifdef ICAS_X86
#include <immintrin.h>
#define ICAS_T512 __attribute__((target("avx512f,avx512vpopcntdq,avx512bw,popcnt")))
#define ICAS_T256 __attribute__((target("avx2,popcnt")))
#define ICAS_TPOP __attribute__((target("popcnt")))
#endif

namespace icas {

namespace {

// Distances are computed in chunks of this many bytes in the threshold forms;
// a pair whose partial distance already exceeds the bound stops there.
constexpr int64_t kEarlyExitBytes = 256;

inline uint64_t load64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

// The last 1..7 bytes of a code, zero-padded (the same padding on both codes,
// so the padding contributes no distance).
inline uint64_t load_tail(const uint8_t* p, int64_t r) {
    uint64_t v = 0;
    std::memcpy(&v, p, static_cast<size_t>(r));
    return v;
}

// Word-at-a-time distance shared by the scalar levels; POP is the popcount.
// Returns early (with a value > max_d) once the partial distance exceeds
// max_d at a chunk boundary.
template <class Pop>
inline int64_t words_dist(const uint8_t* a, const uint8_t* b, int64_t nb, int64_t max_d) {
    int64_t d = 0;
    int64_t k = 0;
    while (k + 8 <= nb) {
        const int64_t stop = std::min(nb - 7, k + kEarlyExitBytes);
        for (; k < stop; k += 8) d += Pop::pop64(load64(a + k) ^ load64(b + k));
        if (d > max_d) return d;
    }
    if (k < nb) d += Pop::pop64(load_tail(a + k, nb - k) ^ load_tail(b + k, nb - k));
    return d;
}

struct Portable {
    static inline int64_t pop64(uint64_t x) {
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
        return static_cast<int64_t>((x * 0x0101010101010101ULL) >> 56);
    }
    static inline int64_t dist(const uint8_t* a, const uint8_t* b, int64_t nb, int64_t max_d) {
        return words_dist<Portable>(a, b, nb, max_d);
    }
};

#ifdef ICAS_X86
struct Popcnt {
    ICAS_TPOP static inline int64_t pop64(uint64_t x) { return __builtin_popcountll(x); }
    ICAS_TPOP static inline int64_t dist(const uint8_t* a, const uint8_t* b, int64_t nb,
                                         int64_t max_d) {
        return words_dist<Popcnt>(a, b, nb, max_d);
    }
};

struct Avx2 {
    ICAS_T256 static inline int64_t pop64(uint64_t x) { return __builtin_popcountll(x); }

    // Per-byte popcount by nibble lookup (Mula's method).
    ICAS_T256 static inline __m256i pop_bytes(__m256i v) {
        const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1,
                                             1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
        const __m256i low = _mm256_set1_epi8(0x0f);
        const __m256i lo = _mm256_and_si256(v, low);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
    }

    ICAS_T256 static inline int64_t hsum(__m256i v) {
        const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
    }

    ICAS_T256 static inline int64_t dist(const uint8_t* a, const uint8_t* b, int64_t nb,
                                         int64_t max_d) {
        if (nb < 32) return words_dist<Avx2>(a, b, nb, max_d);
        __m256i acc = _mm256_setzero_si256();
        int64_t k = 0;
        while (k + 32 <= nb) {
            // At most 8 chunks (8 * 8 = 64 per byte) before the byte sums are
            // widened, so they cannot overflow.
            const int64_t stop = std::min(nb - 31, k + kEarlyExitBytes);
            __m256i bytes = _mm256_setzero_si256();
            for (; k < stop; k += 32) {
                const __m256i x =
                    _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k)),
                                     _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k)));
                bytes = _mm256_add_epi8(bytes, pop_bytes(x));
            }
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
            if (k < nb && hsum(acc) > max_d) return hsum(acc);
        }
        int64_t d = hsum(acc);
        for (; k + 8 <= nb; k += 8) d += pop64(load64(a + k) ^ load64(b + k));
        if (k < nb) d += pop64(load_tail(a + k, nb - k) ^ load_tail(b + k, nb - k));
        return d;
    }
};
static_assert(kEarlyExitBytes / 32 <= 31, "byte counters of the AVX2 kernel would overflow");

struct Avx512 {
    ICAS_T512 static inline int64_t pop64(uint64_t x) { return __builtin_popcountll(x); }

    // Horizontal sum through GCC vector subscripts: _mm512_reduce_add_epi64
    // trips a false -Wmaybe-uninitialized in GCC 12.
    ICAS_T512 static inline int64_t hsum(__m512i v) {
        typedef long long v8 __attribute__((vector_size(64)));
        const v8 x = reinterpret_cast<v8>(v);
        return (x[0] + x[4]) + (x[1] + x[5]) + (x[2] + x[6]) + (x[3] + x[7]);
    }

    ICAS_T512 static inline int64_t dist(const uint8_t* a, const uint8_t* b, int64_t nb,
                                         int64_t max_d) {
        if (nb <= 32 && nb % 8 == 0) return words_dist<Avx512>(a, b, nb, max_d);
        __m512i acc = _mm512_setzero_si512();
        int64_t k = 0;
        while (k + 64 <= nb) {
            const int64_t stop = std::min(nb - 63, k + kEarlyExitBytes);
            for (; k < stop; k += 64) {
                const __m512i x =
                    _mm512_xor_si512(_mm512_loadu_si512(a + k), _mm512_loadu_si512(b + k));
                acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
            }
            if (k < nb && hsum(acc) > max_d) return hsum(acc);
        }
        if (k < nb) {
            // Masked loads read only the bytes of the code: no overrun.
            const __mmask64 m = ~0ULL >> (64 - (nb - k));
            const __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + k),
                                               _mm512_maskz_loadu_epi8(m, b + k));
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
        }
        return hsum(acc);
    }

    // The maskz forms with a full mask are the plain instructions; the plain
    // intrinsics trip a false -Wmaybe-uninitialized in GCC 12 headers.
    static constexpr __mmask8 kAll = 0xFF;

    // Sums of eight accumulators, as eight int64 lanes [s0 .. s7].
    ICAS_T512 static inline __m512i hsum8(const __m512i* acc) {
        __m512i t[4];
        for (int p = 0; p < 4; ++p)
            t[p] = _mm512_add_epi64(_mm512_maskz_unpacklo_epi64(kAll, acc[2 * p], acc[2 * p + 1]),
                                    _mm512_maskz_unpackhi_epi64(kAll, acc[2 * p], acc[2 * p + 1]));
        // t[p]: 128-bit lanes l = 0..3 hold (part of s_2p, part of s_2p+1).
        __m512i v[2];
        for (int q = 0; q < 2; ++q)
            v[q] = _mm512_add_epi64(_mm512_maskz_shuffle_i64x2(kAll, t[2 * q], t[2 * q + 1], 0x88),
                                    _mm512_maskz_shuffle_i64x2(kAll, t[2 * q], t[2 * q + 1], 0xDD));
        // v[q]: lanes (s_4q, s_4q+1) twice and (s_4q+2, s_4q+3) twice.
        return _mm512_add_epi64(_mm512_maskz_shuffle_i64x2(kAll, v[0], v[1], 0x88),
                                _mm512_maskz_shuffle_i64x2(kAll, v[0], v[1], 0xDD));
    }

    // Distances of P codes a + p * nb against Q codes b + q * nb (P * Q a
    // multiple of 8), written to out[p * ldo + q]. Register blocking: each
    // chunk of the P + Q codes is loaded once for P * Q pairs, and the sums
    // are reduced eight at a time. Bounded as dist: the block stops once
    // every pair exceeds max_d.
    static constexpr bool has_block = true;
    template <int P, int Q>
    ICAS_T512 static inline void block(const uint8_t* a, const uint8_t* b, int64_t nb,
                                       int64_t max_d, int32_t* out, int64_t ldo) {
        static_assert((P * Q) % 8 == 0, "pairs are reduced eight at a time");
        constexpr int G = P * Q / 8;
        __m512i acc[P * Q];
        for (int r = 0; r < P * Q; ++r) acc[r] = _mm512_setzero_si512();
        const __m512i bound = _mm512_set1_epi64(max_d);
        int64_t k = 0;
        while (k + 64 <= nb) {
            const int64_t stop = std::min(nb - 63, k + kEarlyExitBytes);
            for (; k < stop; k += 64) {
                __m512i x[P], y[Q];
                for (int p = 0; p < P; ++p) x[p] = _mm512_loadu_si512(a + p * nb + k);
                for (int q = 0; q < Q; ++q) y[q] = _mm512_loadu_si512(b + q * nb + k);
                for (int p = 0; p < P; ++p)
                    for (int q = 0; q < Q; ++q)
                        acc[p * Q + q] = _mm512_add_epi64(
                            acc[p * Q + q], _mm512_popcnt_epi64(_mm512_xor_si512(x[p], y[q])));
            }
            if (k < nb) {
                bool all_over = true;
                for (int g = 0; g < G; ++g)
                    all_over =
                        all_over && _mm512_cmpgt_epi64_mask(hsum8(acc + 8 * g), bound) == kAll;
                if (all_over) {
                    k = nb;  // every pair is already over the bound
                    break;
                }
            }
        }
        if (k < nb) {
            // Masked loads read only the bytes of the codes: no overrun.
            const __mmask64 m = ~0ULL >> (64 - (nb - k));
            __m512i x[P], y[Q];
            for (int p = 0; p < P; ++p) x[p] = _mm512_maskz_loadu_epi8(m, a + p * nb + k);
            for (int q = 0; q < Q; ++q) y[q] = _mm512_maskz_loadu_epi8(m, b + q * nb + k);
            for (int p = 0; p < P; ++p)
                for (int q = 0; q < Q; ++q)
                    acc[p * Q + q] = _mm512_add_epi64(
                        acc[p * Q + q], _mm512_popcnt_epi64(_mm512_xor_si512(x[p], y[q])));
        }
        // Distances fit int32 (bits < 2^31): narrow eight sums at a time.
        for (int g = 0; g < G; ++g) {
            alignas(32) int32_t d[8];
            _mm256_store_si256(reinterpret_cast<__m256i*>(d),
                               _mm512_maskz_cvtepi64_epi32(kAll, hsum8(acc + 8 * g)));
            for (int r = 0; r < 8; ++r) {
                const int pq = 8 * g + r;
                out[(pq / Q) * ldo + pq % Q] = d[r];
            }
        }
    }
};
#endif

// ---- tile loops, generic over the level -----------------------------------

constexpr int64_t kNoBound = std::numeric_limits<int64_t>::max();

template <class L, class = void>
struct has_block : std::false_type {};
template <class L>
struct has_block<L, std::void_t<decltype(L::has_block)>> : std::true_type {};

// out[i * ldo + j] = distance(A_i, B_j) for a tile; with a bound, values above
// max_d are only guaranteed to be > max_d.
template <class L>
inline void tile_impl(const uint8_t* A, int64_t na, const uint8_t* B, int64_t nbr, int64_t nb,
                      int64_t max_d, int32_t* out, int64_t ldo) {
    if (nb == 8) {
        // 64-bit codes: one word each, vectorised across j by the compiler.
        for (int64_t i = 0; i < na; ++i) {
            const uint64_t a = load64(A + 8 * i);
            int32_t* o = out + i * ldo;
            for (int64_t j = 0; j < nbr; ++j)
                o[j] = static_cast<int32_t>(L::pop64(a ^ load64(B + 8 * j)));
        }
        return;
    }
    int64_t i = 0;
    if constexpr (has_block<L>::value) {
        if (nb >= 64) {
            // 4 x 4 blocks, then 1 x 8 for the rows left over.
            for (; i + 4 <= na; i += 4) {
                const uint8_t* a = A + i * nb;
                int32_t* o = out + i * ldo;
                int64_t j = 0;
                for (; j + 4 <= nbr; j += 4)
                    L::template block<4, 4>(a, B + j * nb, nb, max_d, o + j, ldo);
                for (; j < nbr; ++j)
                    for (int p = 0; p < 4; ++p)
                        o[p * ldo + j] =
                            static_cast<int32_t>(L::dist(a + p * nb, B + j * nb, nb, max_d));
            }
            for (; i < na; ++i) {
                const uint8_t* a = A + i * nb;
                int32_t* o = out + i * ldo;
                int64_t j = 0;
                for (; j + 8 <= nbr; j += 8)
                    L::template block<1, 8>(a, B + j * nb, nb, max_d, o + j, ldo);
                for (; j < nbr; ++j) o[j] = static_cast<int32_t>(L::dist(a, B + j * nb, nb, max_d));
            }
        }
    }
    for (; i < na; ++i) {
        const uint8_t* a = A + i * nb;
        int32_t* o = out + i * ldo;
        for (int64_t j = 0; j < nbr; ++j)
            o[j] = static_cast<int32_t>(L::dist(a, B + j * nb, nb, max_d));
    }
}

using TileFn = void (*)(const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t, int64_t,
                        int32_t*, int64_t);

#define ICAS_TILE_ARGS                                                                      \
    const uint8_t *A, int64_t na, const uint8_t *B, int64_t nbr, int64_t nb, int64_t max_d, \
        int32_t *out, int64_t ldo

__attribute__((flatten)) void tile_portable(ICAS_TILE_ARGS) {
    tile_impl<Portable>(A, na, B, nbr, nb, max_d, out, ldo);
}
#ifdef ICAS_X86
ICAS_TPOP __attribute__((flatten)) void tile_popcnt(ICAS_TILE_ARGS) {
    tile_impl<Popcnt>(A, na, B, nbr, nb, max_d, out, ldo);
}
ICAS_T256 __attribute__((flatten)) void tile_avx2(ICAS_TILE_ARGS) {
    tile_impl<Avx2>(A, na, B, nbr, nb, max_d, out, ldo);
}
ICAS_T512 __attribute__((flatten)) void tile_avx512(ICAS_TILE_ARGS) {
    tile_impl<Avx512>(A, na, B, nbr, nb, max_d, out, ldo);
}
#endif
#undef ICAS_TILE_ARGS

bool cpu_runs(HammingKernel k) {
#ifdef ICAS_X86
    __builtin_cpu_init();
    switch (k) {
        case HammingKernel::Avx512:
            return cpu_has_vpopcntdq() && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("popcnt");
        case HammingKernel::Avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
        case HammingKernel::Popcnt:
            return __builtin_cpu_supports("popcnt");
        default:
            return true;
    }
#else
    return k == HammingKernel::Portable || k == HammingKernel::Auto;
#endif
}

HammingKernel resolve_kernel(HammingKernel k) {
    if (k != HammingKernel::Auto) {
        if (!cpu_runs(k))
            throw std::invalid_argument("this CPU cannot run the requested Hamming kernel");
        return k;
    }
    for (HammingKernel c : {HammingKernel::Avx512, HammingKernel::Avx2, HammingKernel::Popcnt})
        if (cpu_runs(c)) return c;
    return HammingKernel::Portable;
}

TileFn tile_for(HammingKernel k) {
    switch (resolve_kernel(k)) {
#ifdef ICAS_X86
        case HammingKernel::Avx512:
            return tile_avx512;
        case HammingKernel::Avx2:
            return tile_avx2;
        case HammingKernel::Popcnt:
            return tile_popcnt;
#endif
        default:
            return tile_portable;
    }
}

void check_sizes(int64_t n_bytes, std::initializer_list<int64_t> counts) {
    for (int64_t c : counts)
        if (c < 0) throw std::invalid_argument("number of codes must be >= 0");
    // Distances are int32 and bits = 8 * n_bytes must fit.
    if (n_bytes < 1 || n_bytes >= (int64_t{1} << 28))
        throw std::invalid_argument("n_bytes must be in [1, 2^28), got " + std::to_string(n_bytes));
}

// Threads for `pairs` pairs of `bytes` bytes each: below about 100 us of work
// one thread does it, as waking the others costs more than it saves.
int threads_for(int64_t pairs, int64_t bytes, int n_threads) {
    constexpr double kMinParallelBytes = 1 << 20;
    if (static_cast<double>(pairs) * static_cast<double>(bytes) < kMinParallelBytes) return 1;
    return resolve_threads(n_threads);
}

// Rows per tile: a tile of codes stays in L1 (16 KiB), between 16 and 256
// rows so that small inputs still split into enough tiles for every thread.
int64_t tile_rows(int64_t n_bytes) { return std::clamp<int64_t>(16384 / n_bytes, 16, 256); }

}  // namespace

std::vector<std::string> hamming_kernels() {
    std::vector<std::string> names;
    if (cpu_runs(HammingKernel::Avx512)) names.emplace_back("avx512");
    if (cpu_runs(HammingKernel::Avx2)) names.emplace_back("avx2");
    if (cpu_runs(HammingKernel::Popcnt)) names.emplace_back("popcnt");
    names.emplace_back("portable");
    return names;
}

HammingKernel hamming_kernel_from_name(const std::string& name) {
    HammingKernel k;
    if (name == "auto") return HammingKernel::Auto;
    if (name == "avx512")
        k = HammingKernel::Avx512;
    else if (name == "avx2")
        k = HammingKernel::Avx2;
    else if (name == "popcnt")
        k = HammingKernel::Popcnt;
    else if (name == "portable")
        k = HammingKernel::Portable;
    else
        throw std::invalid_argument("unknown Hamming kernel '" + name + "'");
    if (!cpu_runs(k))
        throw std::invalid_argument("this CPU cannot run the Hamming kernel '" + name + "'");
    return k;
}

int64_t hamming_max_distance(double threshold, int64_t bits) {
    if (bits < 1) throw std::invalid_argument("bits must be >= 1");
    const auto ok = [&](int64_t d) { return pair_math::hamming_score(d, bits) >= threshold; };
    // The similarity is non-increasing in d in double arithmetic too, so the
    // estimate only needs nudging by the rounding of (1 - threshold) * bits.
    double est = std::floor((1.0 - threshold) * static_cast<double>(bits));
    if (!(est >= -1.0)) est = -1.0;  // also catches NaN
    int64_t d = static_cast<int64_t>(std::min(est, static_cast<double>(bits)));
    while (d < bits && ok(d + 1)) ++d;
    while (d >= 0 && !ok(d)) --d;
    return d;
}

void hamming_matrix(const uint8_t* codes, int64_t n, int64_t n_bytes, int32_t* out, int n_threads,
                    HammingKernel kernel) {
    check_sizes(n_bytes, {n});
    const TileFn tile = tile_for(kernel);
    const int64_t T = tile_rows(n_bytes);
    const int64_t nt = (n + T - 1) / T;
    // Upper-triangle tiles (I <= J); each off-diagonal tile is mirrored.
    std::vector<std::pair<int64_t, int64_t>> tiles;
    for (int64_t I = 0; I < nt; ++I)
        for (int64_t J = I; J < nt; ++J) tiles.emplace_back(I, J);
    const int64_t ntiles = static_cast<int64_t>(tiles.size());
    const int threads = threads_for(n * n / 2, n_bytes, n_threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t t = 0; t < ntiles; ++t) {
        const int64_t i0 = tiles[t].first * T, j0 = tiles[t].second * T;
        const int64_t ni = std::min(T, n - i0), nj = std::min(T, n - j0);
        tile(codes + i0 * n_bytes, ni, codes + j0 * n_bytes, nj, n_bytes, kNoBound,
             out + i0 * n + j0, n);
        if (i0 != j0) {
            for (int64_t j = 0; j < nj; ++j)
                for (int64_t i = 0; i < ni; ++i)
                    out[(j0 + j) * n + i0 + i] = out[(i0 + i) * n + j0 + j];
        }
    }
}

void hamming_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t n_bytes,
                   int32_t* out, int n_threads, HammingKernel kernel) {
    check_sizes(n_bytes, {na, nb});
    const TileFn tile = tile_for(kernel);
    const int64_t T = tile_rows(n_bytes);
    const int64_t nti = (na + T - 1) / T, ntj = (nb + T - 1) / T;
    const int64_t ntiles = nti * ntj;
    const int threads = threads_for(na * nb, n_bytes, n_threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t t = 0; t < ntiles; ++t) {
        const int64_t i0 = (t / ntj) * T, j0 = (t % ntj) * T;
        tile(a + i0 * n_bytes, std::min(T, na - i0), b + j0 * n_bytes, std::min(T, nb - j0),
             n_bytes, kNoBound, out + i0 * nb + j0, nb);
    }
}

Edges hamming_pairs(const uint8_t* codes, int64_t n, int64_t n_bytes, const PairOptions& opt,
                    HammingKernel kernel) {
    check_sizes(n_bytes, {n});
    const TileFn tile = tile_for(kernel);
    const int64_t bits = 8 * n_bytes;
    const int64_t max_d = hamming_max_distance(opt.threshold, bits);
    if (max_d < 0) return Edges{};
    std::vector<float> score_of(static_cast<size_t>(max_d + 1));
    for (int64_t d = 0; d <= max_d; ++d)
        score_of[d] = static_cast<float>(pair_math::hamming_score(d, bits));
    // Distances <= max_d are exact even when the tile stops counting early.
    return tiled::pairs(
        n, tile_rows(n_bytes), threads_for(n * n / 2, n_bytes, opt.n_threads), opt,
        [&](int64_t i0, int64_t ni, int64_t j0, int64_t nj, int32_t* out, int64_t ld) {
            tile(codes + i0 * n_bytes, ni, codes + j0 * n_bytes, nj, n_bytes, max_d, out, ld);
        },
        [max_d](int32_t d) { return d <= max_d; }, [&](int32_t d) { return score_of[d]; });
}

void hamming_components(const uint8_t* codes, int64_t n, int64_t n_bytes, const PairOptions& opt,
                        int64_t* labels, HammingKernel kernel) {
    check_sizes(n_bytes, {n});
    const TileFn tile = tile_for(kernel);
    const int64_t max_d = hamming_max_distance(opt.threshold, 8 * n_bytes);
    if (max_d < 0) {  // no pair passes: every code is its own component
        std::iota(labels, labels + n, int64_t{0});
        return;
    }
    tiled::components(
        n, tile_rows(n_bytes), threads_for(n * n / 2, n_bytes, opt.n_threads), opt,
        [&](int64_t i0, int64_t ni, int64_t j0, int64_t nj, int32_t* out, int64_t ld) {
            tile(codes + i0 * n_bytes, ni, codes + j0 * n_bytes, nj, n_bytes, max_d, out, ld);
        },
        [max_d](int32_t d) { return d <= max_d; }, labels);
}

}  // namespace icas
