// ORB similarity kernels: cross-checked Hamming matching + ratio rule.
//
// Per pair of images the work is the full na x nb Hamming matrix of 256-bit
// descriptors plus, in the same pass, each row's and each column's first
// minimum. Both minima are tracked as keys (distance << k | index): the
// smallest key is the smallest distance and, among equal distances, the
// lowest index, which is exactly OpenCV's "first minimum, strict <" rule.
//
// Two kernels. With AVX-512 VPOPCNTDQ (+BW), the train image is stored
// transposed in blocks of 8 descriptors (word w of descriptors 8b..8b+7 in one
// register): one query against one block is 4 XOR + 4 vector popcounts + 3
// adds for 8 distances, and two blocks are merged into 16 32-bit keys by one
// word permutation. The kernel is bound by the number of vector instructions
// (measured on Zen 4: time tracks instruction count), hence 32-bit keys
// rather than 64-bit ones (14% faster). Otherwise, or for an image with more
// than 65536 descriptors, a scalar-popcount loop compiled as AVX2/AVX-512
// clones with 64-bit keys.
#include "icas/orb_match.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "icas/mih.hpp"
#include "icas/pair_math.hpp"
#include "icas/parallel.hpp"
#include "icas/simd.hpp"

#ifdef ICAS_X86
#include <immintrin.h>
#endif

namespace icas {

namespace {

constexpr uint64_t kNoKey = ~uint64_t{0};
constexpr int64_t kWords = 4;                     // 64-bit words per descriptor
constexpr int64_t kLanes = 8;                     // train descriptors per packed block
constexpr int64_t kBlockWords = kWords * kLanes;  // uint64 per packed block

std::atomic<bool> g_force_portable{false};

inline uint64_t load_word(const uint8_t* p) {
    uint64_t w;
    std::memcpy(&w, p, sizeof(w));  // descriptor rows need not be 8-byte aligned
    return w;
}

bool use_vpopcntdq() {
#ifdef ICAS_X86
    // AVX512BW for vpermt2w: every VPOPCNTDQ CPU but Knights Mill has it.
    static const bool has = cpu_has_vpopcntdq() && __builtin_cpu_supports("avx512bw");
    return has && !g_force_portable.load(std::memory_order_relaxed);
#else
    return false;
#endif
}

// ---------------------------------------------------------------- portable

/// rowkey (na,) and colkey (nb,): first minimum of each row / column of the
/// Hamming matrix between a (na, 32) and b (nb, 32), as distance << 32 | index.
ICAS_CLONES void keys_portable(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb,
                               uint64_t* rowkey, uint64_t* colkey) {
    std::fill(colkey, colkey + nb, kNoKey);
    for (int64_t i = 0; i < na; ++i) {
        const uint8_t* q = a + i * kOrbBytes;
        const uint64_t q0 = load_word(q), q1 = load_word(q + 8), q2 = load_word(q + 16),
                       q3 = load_word(q + 24);
        const uint64_t ikey = static_cast<uint64_t>(i);
        uint64_t best = kNoKey;
        for (int64_t j = 0; j < nb; ++j) {
            const uint8_t* t = b + j * kOrbBytes;
            const uint64_t d = static_cast<uint64_t>(__builtin_popcountll(q0 ^ load_word(t)) +
                                                     __builtin_popcountll(q1 ^ load_word(t + 8)) +
                                                     __builtin_popcountll(q2 ^ load_word(t + 16)) +
                                                     __builtin_popcountll(q3 ^ load_word(t + 24)));
            const uint64_t dk = d << 32;
            best = std::min(best, dk | static_cast<uint64_t>(j));
            colkey[j] = std::min(colkey[j], dk | ikey);
        }
        rowkey[i] = best;
    }
}

// ---------------------------------------------------------------- AVX-512

// Train descriptors are packed in groups of 16 = two blocks of 8: word w of
// descriptor 16g + 8h + l is pack[g * 64 + h * 32 + w * 8 + l].
constexpr int64_t kGroup = 2 * kLanes;
constexpr int64_t kGroupWords = 2 * kBlockWords;
// The vector kernel keeps keys in 32 bits (distance << 16 | index), twice as
// many per register as 64-bit keys: indices must fit in 16 bits.
constexpr int64_t kMaxVectorRows = int64_t{1} << 16;
constexpr uint32_t kNoKey32 = ~uint32_t{0};

inline int64_t groups_of(int64_t n) { return (n + kGroup - 1) / kGroup; }

/// Transposes rows (n, 32) into groups of 16 (layout above), zero past n.
/// out has groups_of(n) * 64 words.
void pack_rows(const uint8_t* rows, int64_t n, uint64_t* out) {
    std::fill(out, out + groups_of(n) * kGroupWords, uint64_t{0});
    for (int64_t j = 0; j < n; ++j)
        for (int64_t w = 0; w < kWords; ++w)
            out[(j / kLanes) * kBlockWords + w * kLanes + j % kLanes] =
                load_word(rows + j * kOrbBytes + w * 8);
}

#ifdef ICAS_X86
#define ICAS_VPOPCNT __attribute__((target("avx512f,avx512bw,avx512vpopcntdq")))
#define ICAS_VPOPCNT_INLINE \
    __attribute__((target("avx512f,avx512bw,avx512vpopcntdq"), always_inline)) inline

/// Distances of query q (32 bytes) to the 8 descriptors of a packed block
/// t0..t3, one per 64-bit lane: 4 XOR + 4 popcounts + 3 adds.
ICAS_VPOPCNT_INLINE __m512i block_distances(__m512i t0, __m512i t1, __m512i t2, __m512i t3,
                                            const uint8_t* q) {
    const auto word = [q](int w) { return static_cast<long long>(load_word(q + 8 * w)); };
    const __m512i x0 = _mm512_xor_si512(t0, _mm512_set1_epi64(word(0)));
    const __m512i x1 = _mm512_xor_si512(t1, _mm512_set1_epi64(word(1)));
    const __m512i x2 = _mm512_xor_si512(t2, _mm512_set1_epi64(word(2)));
    const __m512i x3 = _mm512_xor_si512(t3, _mm512_set1_epi64(word(3)));
    return _mm512_add_epi64(_mm512_add_epi64(_mm512_popcnt_epi64(x0), _mm512_popcnt_epi64(x1)),
                            _mm512_add_epi64(_mm512_popcnt_epi64(x2), _mm512_popcnt_epi64(x3)));
}

/// Queries i0 .. i0 + Q - 1 against every group of 16 train descriptors. The
/// group's 8 registers are loaded once for Q queries; row keys stay in
/// registers, column keys are updated in colkey (L1-resident) once per group.
/// One vpermt2w turns two blocks of 64-bit distances into 16 32-bit lanes
/// holding distance << 16 (the high words of each 64-bit lane are zero).
template <int Q>
ICAS_VPOPCNT_INLINE void query_chunk(const uint8_t* a, int64_t i0, const uint64_t* pack, int64_t nb,
                                     __m512i to_key, uint32_t* rowkey, uint32_t* colkey) {
    const int64_t ngroups = groups_of(nb);
    const int64_t tail = nb - (ngroups - 1) * kGroup;
    constexpr __mmask16 kAll = 0xffff;
    // Padding lanes of the last group must never win a row minimum.
    const __mmask16 tail_mask = static_cast<__mmask16>((1u << tail) - 1u);
    __m512i acc[Q];
    __m512i ivec[Q];
    for (int r = 0; r < Q; ++r) {
        acc[r] = _mm512_set1_epi32(-1);
        ivec[r] = _mm512_set1_epi32(static_cast<int>(i0 + r));
    }
    __m512i jvec = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i step = _mm512_set1_epi32(static_cast<int>(kGroup));
    for (int64_t g = 0; g < ngroups; ++g) {
        const uint64_t* p = pack + g * kGroupWords;
        const __m512i t0 = _mm512_loadu_si512(p), t1 = _mm512_loadu_si512(p + 8),
                      t2 = _mm512_loadu_si512(p + 16), t3 = _mm512_loadu_si512(p + 24);
        const __m512i u0 = _mm512_loadu_si512(p + 32), u1 = _mm512_loadu_si512(p + 40),
                      u2 = _mm512_loadu_si512(p + 48), u3 = _mm512_loadu_si512(p + 56);
        const __mmask16 m = g + 1 < ngroups ? kAll : tail_mask;
        __m512i cacc = _mm512_loadu_si512(colkey + g * kGroup);
        for (int r = 0; r < Q; ++r) {
            const uint8_t* q = a + (i0 + r) * kOrbBytes;
            const __m512i dk = _mm512_permutex2var_epi16(block_distances(t0, t1, t2, t3, q), to_key,
                                                         block_distances(u0, u1, u2, u3, q));
            // Masked forms: GCC 12 warns (falsely) about the unmasked
            // intrinsics' _mm512_undefined source.
            acc[r] = _mm512_mask_min_epu32(acc[r], m, acc[r], _mm512_or_si512(dk, jvec));
            cacc = _mm512_mask_min_epu32(cacc, kAll, cacc, _mm512_or_si512(dk, ivec[r]));
        }
        _mm512_storeu_si512(colkey + g * kGroup, cacc);
        jvec = _mm512_add_epi32(jvec, step);
    }
    for (int r = 0; r < Q; ++r) {
        // Once per query and pair: a plain horizontal minimum is enough.
        alignas(64) uint32_t lanes[kGroup];
        _mm512_store_si512(lanes, acc[r]);
        rowkey[i0 + r] = *std::min_element(lanes, lanes + kGroup);
    }
}

/// rowkey (na,) and colkey (groups_of(nb) * 16, padding meaningless): first
/// minimum of each row / column of the Hamming matrix between a (na, 32) and
/// the packed b (nb rows), as distance << 16 | index. na, nb <= 65536.
ICAS_VPOPCNT void keys_vpopcntdq(const uint8_t* a, int64_t na, const uint64_t* pack, int64_t nb,
                                 uint32_t* rowkey, uint32_t* colkey) {
    std::fill(colkey, colkey + groups_of(nb) * kGroup, kNoKey32);
    // 16-bit word 2k + 1 of the result <- low word of 64-bit lane k of the
    // pair (d0, d1) (word 4k of the 64 words), word 2k <- word 4k + 1 (zero).
    alignas(64) static const uint16_t kToKey[32] = {1,  0,  5,  4,  9,  8,  13, 12, 17, 16, 21,
                                                    20, 25, 24, 29, 28, 33, 32, 37, 36, 41, 40,
                                                    45, 44, 49, 48, 53, 52, 57, 56, 61, 60};
    const __m512i to_key = _mm512_load_si512(kToKey);
    int64_t i = 0;
    for (; i + 4 <= na; i += 4) query_chunk<4>(a, i, pack, nb, to_key, rowkey, colkey);
    for (; i < na; ++i) query_chunk<1>(a, i, pack, nb, to_key, rowkey, colkey);
}
#endif  // ICAS_X86

// ---------------------------------------------------------------- the rule

/// Similarity from the first-minimum keys (distance << Shift | index): query
/// row i is matched when the column of its first minimum has i as its own
/// first minimum (mutual first nearest neighbours).
template <class Key, int Shift>
double similarity_from_keys(const Key* rowkey, int64_t na, const Key* colkey) {
    constexpr Key kIndex = (Key{1} << Shift) - 1;
    const auto matched = [&](int64_t i) {
        return (colkey[rowkey[i] & kIndex] & kIndex) == static_cast<Key>(i);
    };
    int64_t count = 0;
    Key max_d = 0;
    for (int64_t i = 0; i < na; ++i) {
        if (!matched(i)) continue;
        ++count;
        max_d = std::max<Key>(max_d, rowkey[i] >> Shift);
    }
    // The rule itself is shared with the CUDA kernel (pair_math.hpp).
    int64_t good = 0;
    if (count > 0 && max_d > 0)
        for (int64_t i = 0; i < na; ++i)
            if (matched(i) && pair_math::orb_good(static_cast<int64_t>(rowkey[i] >> Shift),
                                                  static_cast<int64_t>(max_d)))
                ++good;
    return pair_math::orb_ratio(good, count, static_cast<int64_t>(max_d));
}

/// The matches themselves, in query order.
template <class Key, int Shift>
void matches_from_keys(const Key* rowkey, int64_t na, const Key* colkey,
                       std::vector<int64_t>& query, std::vector<int64_t>& train,
                       std::vector<int32_t>& distance) {
    constexpr Key kIndex = (Key{1} << Shift) - 1;
    for (int64_t i = 0; i < na; ++i) {
        const Key j = rowkey[i] & kIndex;
        if ((colkey[j] & kIndex) != static_cast<Key>(i)) continue;
        query.push_back(i);
        train.push_back(static_cast<int64_t>(j));
        distance.push_back(static_cast<int32_t>(rowkey[i] >> Shift));
    }
}

struct Scratch {
    std::vector<uint32_t> rowkey32, colkey32;  // vector kernel
    std::vector<uint64_t> rowkey64, colkey64;  // portable kernel
    bool vector = false;                       // which pair holds the last keys

    template <class T>
    static T* fit(std::vector<T>& v, int64_t n) {
        if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
        return v.data();
    }
};

Scratch& thread_scratch() {
    thread_local Scratch s;
    return s;
}

/// The train side of many pairs: the images' descriptors, packed once for the
/// vector kernel (a private copy, about the size of the input).
class TrainSet {
  public:
    explicit TrainSet(const OrbImages& images) : images_(images), simd_(use_vpopcntdq()) {
        if (!simd_) return;
        group_start_.assign(static_cast<size_t>(images.n + 1), 0);
        for (int64_t i = 0; i < images.n; ++i)
            group_start_[i + 1] = group_start_[i] + groups_of(images.count(i));
        pack_.resize(static_cast<size_t>(group_start_[images.n] * kGroupWords));
        for (int64_t i = 0; i < images.n; ++i)
            pack_rows(images.rows(i), images.count(i),
                      pack_.data() + group_start_[i] * kGroupWords);
    }

    /// First-minimum keys of query rows a (na, 32) against train image j, left
    /// in s (s.vector tells which key width).
    void keys(const uint8_t* a, int64_t na, int64_t j, Scratch& s) const {
        const int64_t nb = images_.count(j);
#ifdef ICAS_X86
        if (simd_ && na <= kMaxVectorRows && nb <= kMaxVectorRows) {
            s.vector = true;
            keys_vpopcntdq(a, na, pack_.data() + group_start_[j] * kGroupWords, nb,
                           Scratch::fit(s.rowkey32, na),
                           Scratch::fit(s.colkey32, groups_of(nb) * kGroup));
            return;
        }
#endif
        s.vector = false;
        keys_portable(a, na, images_.rows(j), nb, Scratch::fit(s.rowkey64, na),
                      Scratch::fit(s.colkey64, nb));
    }

    double similarity(const uint8_t* a, int64_t na, int64_t j) const {
        if (na == 0 || images_.count(j) == 0) return 0.0;
        Scratch& s = thread_scratch();
        keys(a, na, j, s);
        if (s.vector)
            return similarity_from_keys<uint32_t, 16>(s.rowkey32.data(), na, s.colkey32.data());
        return similarity_from_keys<uint64_t, 32>(s.rowkey64.data(), na, s.colkey64.data());
    }

  private:
    OrbImages images_;
    bool simd_;
    std::vector<int64_t> group_start_;
    std::vector<uint64_t> pack_;
};

OrbImages single_image(const uint8_t* rows, int64_t n, const int64_t* offsets) {
    OrbImages one;
    one.descriptors = rows;
    one.offsets = offsets;
    one.n = 1;
    one.total = n;
    return one;
}

}  // namespace

void check_orb_offsets(const int64_t* offsets, int64_t n_offsets, int64_t total,
                       const std::string& name) {
    if (n_offsets < 1)
        throw std::invalid_argument(name +
                                    " must have shape (n + 1,) with at least 1 item, got (0,)");
    if (offsets[0] != 0)
        throw std::invalid_argument(name + "[0] must be 0, got " + std::to_string(offsets[0]));
    for (int64_t i = 0; i + 1 < n_offsets; ++i) {
        const int64_t c = offsets[i + 1] - offsets[i];
        if (c < 0)
            throw std::invalid_argument(name + " must be non-decreasing, but " + name + "[" +
                                        std::to_string(i + 1) + "] < " + name + "[" +
                                        std::to_string(i) + "]");
        if (c > std::numeric_limits<int32_t>::max())
            throw std::invalid_argument(name + ": image " + std::to_string(i) +
                                        " has more than 2^31 - 1 descriptors");
    }
    if (offsets[n_offsets - 1] != total)
        throw std::invalid_argument(name + "[-1] must equal the number of descriptor rows (" +
                                    std::to_string(total) + "), got " +
                                    std::to_string(offsets[n_offsets - 1]));
}

void orb_matches(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb,
                 std::vector<int64_t>& query, std::vector<int64_t>& train,
                 std::vector<int32_t>& distance) {
    if (na == 0 || nb == 0) return;
    const int64_t offsets[2] = {0, nb};
    const TrainSet ts(single_image(b, nb, offsets));
    Scratch s;
    ts.keys(a, na, 0, s);
    if (s.vector)
        matches_from_keys<uint32_t, 16>(s.rowkey32.data(), na, s.colkey32.data(), query, train,
                                        distance);
    else
        matches_from_keys<uint64_t, 32>(s.rowkey64.data(), na, s.colkey64.data(), query, train,
                                        distance);
}

double orb_similarity(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb) {
    if (na == 0 || nb == 0) return 0.0;
    const int64_t offsets[2] = {0, nb};
    const TrainSet ts(single_image(b, nb, offsets));
    return ts.similarity(a, na, 0);
}

void orb_matrix(const OrbImages& images, double* out, int n_threads) {
    const TrainSet ts(images);
    auto sim = [&](int64_t i, int64_t j) {
        return ts.similarity(images.rows(i), images.count(i), j);
    };
    pairs_matrix<double>(images.n, sim, /*symmetric=*/true, out, n_threads);
}

void orb_cross(const OrbImages& a, const OrbImages& b, double* out, int n_threads) {
    const TrainSet ts(b);
    auto sim = [&](int64_t i, int64_t j) { return ts.similarity(a.rows(i), a.count(i), j); };
    pairs_cross<double>(a.n, b.n, sim, out, n_threads);
}

std::vector<int64_t> orb_index_candidates(const OrbImages& images, const OrbCandidates& how,
                                          const PairOptions& opt) {
    if (how.radius < 0 || how.radius > 8 * kOrbBytes)
        throw std::invalid_argument("radius must be in [0, 256], got " +
                                    std::to_string(how.radius));
    if (how.min_shared < 1)
        throw std::invalid_argument("min_shared must be >= 1, got " +
                                    std::to_string(how.min_shared));
    std::vector<int64_t> out;
    if (images.n < 2 || images.total < 2) return out;
    // Each descriptor's group is its image, so descriptor pairs inside one
    // image are never formed. radius / 256 is exact in double, so the
    // threshold admits exactly the distances <= radius.
    std::vector<int64_t> owner(static_cast<size_t>(images.total));
    for (int64_t i = 0; i < images.n; ++i)
        std::fill(owner.begin() + images.offsets[i], owner.begin() + images.offsets[i + 1], i);
    PairOptions near;
    near.threshold = 1.0 - static_cast<double>(how.radius) / (8.0 * kOrbBytes);
    near.groups = owner.data();
    near.n_threads = opt.n_threads;
    Edges d = hamming_index_pairs(images.descriptors, images.total, kOrbBytes, near, -1);
    std::vector<int64_t> keys(static_cast<size_t>(d.size()));
    for (int64_t k = 0; k < d.size(); ++k) {
        int64_t a = owner[d.ij[2 * k]], b = owner[d.ij[2 * k + 1]];
        if (a > b) std::swap(a, b);
        keys[k] = a * images.n + b;
    }
    d = Edges();
    std::sort(keys.begin(), keys.end());
    for (size_t k = 0; k < keys.size();) {
        size_t e = k;
        while (e < keys.size() && keys[e] == keys[k]) ++e;
        const int64_t i = keys[k] / images.n, j = keys[k] % images.n;
        if (static_cast<int64_t>(e - k) >= how.min_shared && !detail::same_group(opt, i, j)) {
            out.push_back(i);
            out.push_back(j);
        }
        k = e;
    }
    return out;
}

Edges orb_pairs_among(const OrbImages& images, const int64_t* candidates, int64_t m,
                      const PairOptions& opt) {
    const TrainSet ts(images);
    std::vector<float> score(static_cast<size_t>(m));
    ExceptionCatcher errors;
    const int threads = resolve_threads(opt.n_threads);
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
    for (int64_t k = 0; k < m; ++k) {
        errors.run([&] {
            const int64_t i = candidates[2 * k], j = candidates[2 * k + 1];
            const double s = ts.similarity(images.rows(i), images.count(i), j);
            // NaN marks a pair below the threshold (similarities are in [0, 1]).
            score[k] = s >= opt.threshold ? static_cast<float>(s)
                                          : std::numeric_limits<float>::quiet_NaN();
        });
    }
    errors.rethrow();
    Edges e;
    for (int64_t k = 0; k < m; ++k) {
        if (score[k] != score[k]) continue;
        e.ij.push_back(candidates[2 * k]);
        e.ij.push_back(candidates[2 * k + 1]);
        e.score.push_back(score[k]);
    }
    return e;
}

Edges orb_pairs(const OrbImages& images, const PairOptions& opt, const OrbCandidates& how) {
    if (how.index) {
        const std::vector<int64_t> c = orb_index_candidates(images, how, opt);
        return orb_pairs_among(images, c.data(), static_cast<int64_t>(c.size() / 2), opt);
    }
    const TrainSet ts(images);
    auto sim = [&](int64_t i, int64_t j) {
        return ts.similarity(images.rows(i), images.count(i), j);
    };
    return pairs_threshold(images.n, sim, opt);
}

void orb_components(const OrbImages& images, const PairOptions& opt, int64_t* labels,
                    const OrbCandidates& how) {
    if (how.index) {
        const Edges e = orb_pairs(images, opt, how);
        connected_components(e.ij.data(), e.size(), images.n, labels);
        return;
    }
    const TrainSet ts(images);
    auto sim = [&](int64_t i, int64_t j) {
        return ts.similarity(images.rows(i), images.count(i), j);
    };
    pairs_components(images.n, sim, opt, labels);
}

std::string orb_kernel() { return use_vpopcntdq() ? "avx512-vpopcntdq" : "portable"; }

void orb_force_portable(bool on) { g_force_portable.store(on, std::memory_order_relaxed); }

}  // namespace icas
