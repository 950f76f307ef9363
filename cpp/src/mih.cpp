// Multi-index hashing for Hamming radius search (see mih.hpp). Per table:
// the substring value of every code, a counting sort of the codes by value
// (bucket offsets over all 2^s values, so a probe is two loads), then every
// code queries the buckets within the substring's radius of its own value.
// The query loops carry ICAS_CLONES and flatten (everything they call is
// inlined into each clone), so the popcounts use the hardware instruction
// where the CPU has it.
#include "icas/mih.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "candidate_edges.hpp"
#include "icas/hamming.hpp"
#include "icas/parallel.hpp"
#include "icas/simd.hpp"
#include "icas/union_find.hpp"

#ifdef ICAS_HAVE_OPENMP
#include <omp.h>
#endif

#ifdef ICAS_X86
#include <immintrin.h>
#endif

namespace icas {

namespace {

using detail::Hit;

// ---- cost model ---------------------------------------------------------------
// Seconds per operation on one thread, fitted (least squares on relative
// error) to CPU times of index runs on the development machine (AMD EPYC Zen
// 4, 2 shared cores; 64-bit codes n = 20k..1M, 256-bit n = 200k, 4096-bit
// n = 50k, radii 3..409, several m each; the model is within about 40 % of
// every run): a table probe, a bucket entry whose code is in the table (8
// per step for 64-bit codes with VPOPCNTDQ, else one, plus per 64-bit word)
// or read from the codes, a scanned code, building a table per code (plus
// copying codes in) and per bucket, and a brute-force pair (its 64-bit path
// is much faster than the general one).
constexpr double kProbe = 7e-9;
constexpr double kEntry64x8 = 0.4e-9;
constexpr double kEntryInline = 1.0e-9;
constexpr double kEntryInlinePerWord = 0.35e-9;
constexpr double kEntryFar = 11e-9;
constexpr double kScan = 1e-9;
constexpr double kBuildPerCode = 21e-9;
constexpr double kBuildInlinePerCode = 20e-9;
constexpr double kBuildPerBucket = 0.5e-9;
constexpr double kPair64 = 0.65e-9;
constexpr double kPair = 3e-9;

// Codes up to this many bytes are copied into the table in bucket order, so
// verifying a bucket reads consecutive memory instead of one random code
// each (the candidates, not the probes, dominate a query).
constexpr int64_t kInlineBytes = 64;

// Sum of C(s, w) for w = 0..r: the values within distance r of one s-bit value.
double ball(int64_t s, int64_t r) {
    if (r < 0) return 0.0;
    if (r >= s) return std::ldexp(1.0, static_cast<int>(s));
    double c = 1.0, sum = 1.0;
    for (int64_t w = 1; w <= r; ++w) {
        c = c * static_cast<double>(s - w + 1) / static_cast<double>(w);
        sum += c;
    }
    return sum;
}

int64_t ceil_log2(int64_t n) {
    int64_t b = 0;
    while ((int64_t{1} << b) < n) ++b;
    return b;
}

// ---- substrings and tables -------------------------------------------------------

inline uint64_t load64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

// The last 1..7 bytes of a code, zero-padded.
inline uint64_t load_tail(const uint8_t* p, int64_t r) {
    uint64_t v = 0;
    std::memcpy(&v, p, static_cast<size_t>(r));
    return v;
}

inline int64_t popcount(uint64_t x) { return __builtin_popcountll(x); }

// One searched substring: bits [8 * byte + shift, + len) of every code.
struct Sub {
    int64_t byte = 0;
    int shift = 0;
    int len = 0;         // s, in [1, 28]
    uint32_t mask = 0;   // (1 << len) - 1
    bool tail = false;   // fewer than 8 bytes from `byte` to the end of a code
    int64_t radius = 0;  // q or q - 1, >= 0
    bool scan = false;   // so many buckets are within radius that scanning every code is cheaper
};

inline uint32_t value_of(const uint8_t* code, int64_t n_bytes, const Sub& s) {
    const uint64_t w = s.tail ? load_tail(code + s.byte, n_bytes - s.byte) : load64(code + s.byte);
    return static_cast<uint32_t>(w >> s.shift) & s.mask;
}

// The searched substrings of the index with m substrings for radius R: the
// first bits % m are one bit longer; the first a + 1 have radius q, the
// others q - 1 (R = m q + a); those with radius q - 1 < 0 are not searched.
std::vector<Sub> layout(int64_t n, int64_t bits, int64_t n_bytes, int64_t m, int64_t R) {
    const int64_t L = bits / m, extra = bits % m, q = R / m, a = R % m;
    std::vector<Sub> subs;
    int64_t start = 0;
    for (int64_t t = 0; t < m; ++t) {
        const int64_t len = L + (t < extra ? 1 : 0);
        const int64_t radius = t <= a ? q : q - 1;
        if (radius >= 0) {
            Sub s;
            s.byte = start / 8;
            s.shift = static_cast<int>(start % 8);
            s.len = static_cast<int>(len);
            s.mask = static_cast<uint32_t>((uint64_t{1} << len) - 1);
            s.tail = s.byte + 8 > n_bytes;
            s.radius = radius;
            s.scan = radius >= len || ball(len, radius) > 0.5 * static_cast<double>(n);
            subs.push_back(s);
        }
        start += len;
    }
    return subs;
}

// Every s-bit mask of at most r set bits, by weight (Gosper's hack).
std::vector<uint32_t> masks_within(int len, int64_t r) {
    std::vector<uint32_t> out;
    out.push_back(0);
    const uint64_t end = uint64_t{1} << len;
    for (int64_t w = 1; w <= r && w <= len; ++w) {
        uint64_t v = (uint64_t{1} << w) - 1;
        while (v < end) {
            out.push_back(static_cast<uint32_t>(v));
            const uint64_t t = v | (v - 1);
            v = (t + 1) | (((~t & (t + 1)) - 1) >> (__builtin_ctzll(v) + 1));
        }
    }
    return out;
}

// Building a table runs in parallel from this many codes on.
constexpr int64_t kParallelBuild = int64_t{1} << 18;

struct Table {
    std::vector<uint32_t> key;   // (n,) substring value of each code
    std::vector<uint32_t> off;   // (2^len + 1,) start of each value's bucket
    std::vector<uint32_t> ids;   // (n,) codes by value, ascending within a bucket
    std::vector<uint8_t> codes;  // (n, n_bytes) the codes in the order of ids, if inline
};

void build_table(const uint8_t* codes, int64_t n, int64_t n_bytes, const Sub& s, int threads,
                 Table& tb) {
    tb.key.resize(static_cast<size_t>(n));
    uint32_t* key = tb.key.data();
#pragma omp parallel for schedule(static) num_threads(threads) if (n >= kParallelBuild)
    for (int64_t i = 0; i < n; ++i) key[i] = value_of(codes + i * n_bytes, n_bytes, s);
    if (s.scan) {  // scanned, not probed
        tb.ids.clear();
        tb.codes.clear();
        return;
    }
    // Counting sort: off[v] ends as the start of bucket v.
    tb.off.assign((size_t{1} << s.len) + 1, 0);
    uint32_t* off = tb.off.data();
    for (int64_t i = 0; i < n; ++i) ++off[key[i] + 1];
    for (size_t v = 1; v < tb.off.size(); ++v) off[v] += off[v - 1];
    tb.ids.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) tb.ids[off[key[i]]++] = static_cast<uint32_t>(i);
    for (size_t v = tb.off.size() - 1; v > 0; --v) off[v] = off[v - 1];
    off[0] = 0;
    if (n_bytes <= kInlineBytes) {
        tb.codes.resize(static_cast<size_t>(n * n_bytes));
        uint8_t* dst = tb.codes.data();
        const uint32_t* ids = tb.ids.data();
#pragma omp parallel for schedule(static) num_threads(threads) if (n >= kParallelBuild)
        for (int64_t p = 0; p < n; ++p)
            std::memcpy(dst + p * n_bytes, codes + static_cast<int64_t>(ids[p]) * n_bytes,
                        static_cast<size_t>(n_bytes));
    }
}

// ---- queries --------------------------------------------------------------------

struct Query {
    const uint8_t* codes;
    int64_t n;
    int64_t n_bytes;
    int64_t R;
    const Sub* subs;  // subs[0 .. t] are this table's and the earlier ones
    int64_t t;
    const std::vector<uint32_t>* masks;
    const Table* tb;
    const int64_t* groups;
    bool vpopcnt;  // the CPU has AVX-512 VPOPCNTDQ (buckets of 64-bit codes in 8 lanes)
};

inline int64_t distance(const uint8_t* a, const uint8_t* b, int64_t nb, int64_t R) {
    if (nb == 8) return popcount(load64(a) ^ load64(b));
    int64_t d = 0, k = 0;
    for (; k + 8 <= nb; k += 8) {
        d += popcount(load64(a + k) ^ load64(b + k));
        if ((k & 63) == 56 && d > R) return d;  // checked once per cache line
    }
    if (k < nb) d += popcount(load_tail(a + k, nb - k) ^ load_tail(b + k, nb - k));
    return d;
}

inline bool within(const Query& c, const uint8_t* ci, const uint8_t* cj, const Sub& s) {
    return popcount(value_of(ci, c.n_bytes, s) ^ value_of(cj, c.n_bytes, s)) <= s.radius;
}

// True when table t is the first one whose search reaches the pair: no
// earlier substring is within its radius. Keeps each pair exactly once.
inline bool first_reach(const Query& c, const uint8_t* ci, const uint8_t* cj) {
    for (int64_t t = 0; t < c.t; ++t)
        if (within(c, ci, cj, c.subs[t])) return false;
    return true;
}

constexpr int64_t kPrefetch = 8;

constexpr int64_t kChunk = 256;  // bucket entries tested together

// The positions q in [b, e) (at most kChunk; hits has kChunk + 8 slots) with ids[q] > self and
// popcount(ci ^ codes[q]) <= R, written to hits; returns their number.
// Eight 64-bit codes per step: the test of a table entry is the hot loop of
// short codes at larger radii.
#ifdef ICAS_X86
__attribute__((target("avx512f,avx512vl,avx512vpopcntdq"))) int64_t
bucket_hits64(const uint32_t* ids, const uint8_t* codes, int64_t b, int64_t e, uint32_t self,
              uint64_t ci, int64_t R, uint32_t* hits) {
    const __m512i vci = _mm512_set1_epi64(static_cast<long long>(ci));
    const __m512i vr = _mm512_set1_epi64(R);
    const __m256i vself = _mm256_set1_epi32(static_cast<int>(self));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int64_t k = 0;
    for (int64_t q = b; q < e; q += 8) {
        const __mmask8 m = e - q >= 8 ? 0xFF : static_cast<__mmask8>((1u << (e - q)) - 1u);
        const __m512i x = _mm512_maskz_loadu_epi64(m, codes + 8 * q);
        const __m256i id = _mm256_maskz_loadu_epi32(m, ids + q);
        const __m512i d = _mm512_popcnt_epi64(_mm512_xor_si512(x, vci));
        const __mmask8 ok =
            _mm512_mask_cmple_epu64_mask(m, d, vr) & _mm256_mask_cmpgt_epu32_mask(m, id, vself);
        const __m256i pos = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(q)), lane);
        // Compress in a register and store all 8 lanes (hits has room): a
        // compress straight to memory is microcoded and slow on AMD Zen 4.
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(hits + k),
                            _mm256_maskz_compress_epi32(ok, pos));
        k += __builtin_popcount(ok);
    }
    return k;
}
#endif

// Calls f(j, code_j) once for each code j > i within the table's radius of
// code i on its substring (or, for a scanned table, for each j > i that is).
// With the codes in the table (ci: code i), only for those within distance R
// of code i: a bucket is tested without branches, as most entries fail.
template <class F>
inline void for_candidates(const Query& c, int64_t i, const uint8_t* ci, F&& f) {
    const Sub& s = c.subs[c.t];
    const uint32_t ki = c.tb->key[i];
    const uint32_t self = static_cast<uint32_t>(i);
    const int64_t nb = c.n_bytes;
    if (s.scan) {
        const uint32_t* key = c.tb->key.data();
        for (int64_t j = i + 1; j < c.n; ++j)
            if (popcount(ki ^ key[j]) <= s.radius) f(static_cast<uint32_t>(j), c.codes + j * nb);
        return;
    }
    const uint32_t* off = c.tb->off.data();
    const uint32_t* ids = c.tb->ids.data();
    const uint8_t* inline_codes = c.tb->codes.empty() ? nullptr : c.tb->codes.data();
    const uint32_t* masks = c.masks->data();
    const int64_t nm = static_cast<int64_t>(c.masks->size());
    for (int64_t p = 0; p < nm; ++p) {
        if (p + kPrefetch < nm) __builtin_prefetch(off + (ki ^ masks[p + kPrefetch]));
        const uint32_t v = ki ^ masks[p];
        int64_t b = off[v];
        const int64_t e = off[v + 1];
        // Skip the ids <= i (they come first): a binary search in a large
        // bucket, else a branch-free test, as a branch per id would be
        // mispredicted half the time.
        if (e - b > 32) b = std::upper_bound(ids + b, ids + e, self) - ids;
        if (inline_codes != nullptr) {
            uint32_t hits[kChunk + 8];
            for (int64_t b0 = b; b0 < e; b0 += kChunk) {
                const int64_t e0 = std::min(e, b0 + kChunk);
                int64_t k = 0;
#ifdef ICAS_X86
                if (c.vpopcnt && nb == 8) {
                    k = bucket_hits64(ids, inline_codes, b0, e0, self, load64(ci), c.R, hits);
                } else
#endif
                    for (int64_t q = b0; q < e0; ++q) {
                        hits[k] = static_cast<uint32_t>(q);
                        k +=
                            (ids[q] > self) & (distance(ci, inline_codes + q * nb, nb, c.R) <= c.R);
                    }
                for (int64_t h = 0; h < k; ++h) f(ids[hits[h]], inline_codes + hits[h] * nb);
            }
            continue;
        }
        if (e - b <= 32) {
            int64_t skip = 0;
            for (int64_t q = b; q < e; ++q) skip += ids[q] <= self;
            b += skip;
        }
        for (; b < e; ++b) f(ids[b], c.codes + int64_t{ids[b]} * nb);
    }
}

// Queries run in the order of the table (by substring value), not by id:
// consecutive queries then probe neighbouring buckets for every mask, so the
// offsets and bucket contents are read from cache instead of at random.
inline int64_t query_at(const Query& c, int64_t pos) {
    return c.tb->ids.empty() ? pos : c.tb->ids[pos];
}

struct Candidate {
    uint32_t i;
    uint32_t j;
};

constexpr size_t kBuffer = 1024;  // candidates verified together
constexpr size_t kAhead = 8;      // prefetch distance, in candidates

// Runs check(i, j, code_i, code_j) on every candidate of the queries at
// positions [q0, q1) (pairs of equal groups left out), in query order.
// Codes copied into the table are verified as they are found; other codes
// (long ones, or a scanned table) are collected and verified with the
// first two cache lines of both codes prefetched a few candidates ahead,
// as each would otherwise be a cache miss.
template <class Check>
inline void verify_queries(const Query& c, int64_t q0, int64_t q1, Check&& check) {
    const int64_t nb = c.n_bytes;
    const auto code = [&](uint32_t k) { return c.codes + int64_t{k} * nb; };
    if (!c.tb->codes.empty()) {
        for (int64_t pos = q0; pos < q1; ++pos) {
            const int64_t i = query_at(c, pos);
            const uint8_t* ci = c.tb->codes.data() + pos * nb;
            for_candidates(c, i, ci, [&](uint32_t j, const uint8_t* cj) {
                if (c.groups == nullptr || c.groups[i] != c.groups[j])
                    check(static_cast<uint32_t>(i), j, ci, cj);
            });
        }
        return;
    }
    std::vector<Candidate> buf;
    buf.reserve(kBuffer);
    const auto drain = [&] {
        const size_t m = buf.size();
        for (size_t k = 0; k < m; ++k) {
            if (k + kAhead < m) {
                const uint8_t* pi = code(buf[k + kAhead].i);
                const uint8_t* pj = code(buf[k + kAhead].j);
                __builtin_prefetch(pi);
                __builtin_prefetch(pi + std::min<int64_t>(64, nb - 1));
                __builtin_prefetch(pj);
                __builtin_prefetch(pj + std::min<int64_t>(64, nb - 1));
            }
            check(buf[k].i, buf[k].j, code(buf[k].i), code(buf[k].j));
        }
        buf.clear();
    };
    for (int64_t pos = q0; pos < q1; ++pos) {
        const int64_t i = query_at(c, pos);
        for_candidates(c, i, nullptr, [&](uint32_t j, const uint8_t*) {
            if (c.groups != nullptr && c.groups[i] == c.groups[j]) return;
            buf.push_back({static_cast<uint32_t>(i), j});
            if (buf.size() == kBuffer) drain();
        });
    }
    drain();
}

ICAS_CLONES __attribute__((flatten)) void query_pairs(const Query& c, int64_t q0, int64_t q1,
                                                      std::vector<Hit>& out) {
    verify_queries(c, q0, q1, [&](uint32_t i, uint32_t j, const uint8_t* ci, const uint8_t* cj) {
        const int64_t d = distance(ci, cj, c.n_bytes, c.R);
        if (d <= c.R && first_reach(c, ci, cj)) out.push_back({i, j, static_cast<int32_t>(d)});
    });
}

// Stamp value of a root no query has reached.
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

// stamp[r] == i: query i already reached the component of root r. Stale
// stamps of earlier waves are harmless: a component query i reached was
// joined to i's, so it is either i's own (skipped anyway) or no longer a root.
ICAS_CLONES __attribute__((flatten)) void query_components(
    const Query& c, int64_t q0, int64_t q1, const UnionFind& uf, uint32_t* stamp,
    std::vector<std::pair<uint32_t, uint32_t>>& out) {
    uint32_t current = kNone;
    // The query's own root is stamped when first needed: most queries have
    // no pair, and the lookup is a cache miss. The distance goes before the
    // root lookups, as most candidates are not pairs.
    verify_queries(c, q0, q1, [&](uint32_t i, uint32_t j, const uint8_t* ci, const uint8_t* cj) {
        if (distance(ci, cj, c.n_bytes, c.R) > c.R) return;
        if (i != current) {
            current = i;
            stamp[uf.find_const(i)] = i;
        }
        const int64_t rj = uf.find_const(j);
        if (stamp[rj] == i) return;
        stamp[rj] = i;
        out.emplace_back(i, j);
    });
}

// Cost-model time of the index with m substrings (see mih_plan); `queries`,
// if given, receives the part spent in queries (the part run in parallel).
double index_seconds(int64_t n, int64_t bits, int64_t R, int64_t m, double* queries = nullptr) {
    const double nn = static_cast<double>(n);
    const int64_t n_bytes = (bits + 7) / 8;
    const bool in_table = n_bytes <= kInlineBytes;
    static const bool vpopcnt = cpu_has_vpopcntdq();
    const double entry =
        n_bytes == 8 && vpopcnt
            ? kEntry64x8
            : (in_table ? kEntryInline + kEntryInlinePerWord * static_cast<double>(n_bytes / 8)
                        : kEntryFar);
    const double build_code = kBuildPerCode + (in_table ? kBuildInlinePerCode : 0.0);
    const int64_t L = bits / m, extra = bits % m, q = R / m, a = R % m;
    // Substrings by (length, radius): the long ones come first, as do those
    // of radius q.
    const int64_t long_q = std::min(extra, a + 1), short_q = a + 1 - long_q;
    const int64_t long_q1 = extra - long_q, short_q1 = m - extra - short_q;
    double query = 0.0, build = 0.0;
    const auto add = [&](int64_t count, int64_t len, int64_t r) {
        if (count == 0 || r < 0) return;
        const double probes = ball(len, r);
        const double buckets = std::ldexp(1.0, static_cast<int>(len));
        const double k = static_cast<double>(count);
        if (r >= len || probes > 0.5 * nn) {  // scanned, as in layout()
            query += k * nn * nn / 2.0 * (kScan + probes / buckets * kEntryFar);
        } else {
            query += k * nn * (probes * kProbe + nn * probes / buckets * entry);
            build += k * (nn * build_code + buckets * kBuildPerBucket);
        }
    };
    add(long_q, L + 1, q);
    add(short_q, L, q);
    add(long_q1, L + 1, q - 1);
    add(short_q1, L, q - 1);
    if (queries != nullptr) *queries = query;
    return query + build;
}

// ---- drivers ----------------------------------------------------------------------

void check_args(int64_t n, int64_t n_bytes) {
    if (n < 0 || n > static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
        throw std::invalid_argument("number of codes must be in [0, 2^32), got " +
                                    std::to_string(n));
    if (n_bytes < 1 || n_bytes >= (int64_t{1} << 28))
        throw std::invalid_argument("n_bytes must be in [1, 2^28), got " + std::to_string(n_bytes));
}

// The number of substrings to use, or 0 for the brute-force kernel.
int64_t choose_substrings(int64_t n, int64_t bits, int64_t R, int64_t substrings) {
    if (substrings == 0 || substrings == -1) {
        const MihPlan p = mih_plan(n, bits, R);
        return substrings == 0 && !p.use_index ? 0 : p.substrings;
    }
    const int64_t s_max = mih_max_substring_bits(n);
    const int64_t lo = (bits + s_max - 1) / s_max;
    if (substrings < lo || substrings > bits)
        throw std::invalid_argument(
            "substrings must be 0 (planned, may run brute force), -1 (index, planned m) or in [" +
            std::to_string(lo) + ", " + std::to_string(bits) + "] for " + std::to_string(n) +
            " codes of " + std::to_string(bits) + " bits (substrings of at most " +
            std::to_string(s_max) + " bits), got " + std::to_string(substrings));
    return substrings;
}

// Tables are built and searched in groups of at most this many bytes, so
// one parallel region covers many tables (long codes have hundreds).
constexpr int64_t kGroupBytes = int64_t{64} << 20;

int64_t table_bytes(int64_t n, int64_t n_bytes, const Sub& s) {
    if (s.scan) return 4 * n;
    return 4 * ((int64_t{1} << s.len) + 1) + 8 * n + (n_bytes <= kInlineBytes ? n * n_bytes : 0);
}

// Consecutive ranges [begin, end) of the substrings, one per group.
std::vector<std::pair<size_t, size_t>> table_groups(int64_t n, int64_t n_bytes,
                                                    const std::vector<Sub>& subs) {
    std::vector<std::pair<size_t, size_t>> groups;
    int64_t bytes = 0;
    for (size_t t = 0; t < subs.size(); ++t) {
        const int64_t b = table_bytes(n, n_bytes, subs[t]);
        if (groups.empty() || bytes + b > kGroupBytes) {
            groups.emplace_back(t, t);
            bytes = 0;
        }
        groups.back().second = t + 1;
        bytes += b;
    }
    return groups;
}

// One thread when the model expects the queries of a group of tables to take
// less than 10 ms: each group is a parallel region, and on a busy machine a
// region can wait milliseconds for a thread to be scheduled.
int threads_for(int64_t n, int64_t bits, int64_t R, int64_t m, size_t n_groups, int n_threads) {
    constexpr double kMinParallelSeconds = 10e-3;
    double queries = 0.0;
    index_seconds(n, bits, R, m, &queries);
    return queries / static_cast<double>(n_groups) < kMinParallelSeconds
               ? 1
               : resolve_threads(n_threads);
}

// The tables of substrings [t0, t1) and a query context for each.
struct Group {
    std::vector<Table> tables;
    std::vector<std::vector<uint32_t>> masks;
    std::vector<Query> queries;
};

void build_group(const uint8_t* codes, int64_t n, int64_t n_bytes, int64_t R,
                 const std::vector<Sub>& subs, size_t t0, size_t t1, const int64_t* groups,
                 int threads, Group& g) {
    const int64_t count = static_cast<int64_t>(t1 - t0);
    g.tables.clear();  // frees the previous group first
    g.tables.resize(static_cast<size_t>(count));
    g.masks.assign(static_cast<size_t>(count), {});
    g.queries.clear();
    ExceptionCatcher errors;
    // One table per thread, or one table built with every thread.
    const int inner = count == 1 ? threads : 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (count > 1)
    for (int64_t k = 0; k < count; ++k)
        errors.run([&] {
            const Sub& s = subs[t0 + k];
            build_table(codes, n, n_bytes, s, inner, g.tables[k]);
            if (!s.scan) g.masks[k] = masks_within(s.len, s.radius);
        });
    errors.rethrow();
    for (int64_t k = 0; k < count; ++k)
        g.queries.push_back(Query{codes, n, n_bytes, R, subs.data(), static_cast<int64_t>(t0 + k),
                                  &g.masks[k], &g.tables[k], groups, cpu_has_vpopcntdq()});
}

int thread_id() {
#ifdef ICAS_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

constexpr int64_t kBlock = 256;   // queries per task
constexpr int64_t kWave = 65536;  // queries between unions (components)

}  // namespace

int64_t mih_max_substring_bits(int64_t n) {
    return std::clamp<int64_t>(ceil_log2(std::max<int64_t>(n, 1)) + 2, 16, 28);
}

MihPlan mih_plan(int64_t n, int64_t bits, int64_t max_d) {
    if (n < 0 || bits < 1) throw std::invalid_argument("mih_plan needs n >= 0 and bits >= 1");
    MihPlan p;
    p.max_distance = max_d;
    const double nn = static_cast<double>(n);
    p.brute_seconds = nn * (nn - 1.0) / 2.0 * (bits == 64 ? kPair64 : kPair);
    if (max_d < 0) return p;
    const int64_t s_max = mih_max_substring_bits(n);
    const int64_t lo = (bits + s_max - 1) / s_max;
    const int64_t hi = std::min<int64_t>(bits, lo + 65536);
    double best = std::numeric_limits<double>::infinity();
    for (int64_t m = lo; m <= hi; ++m) {
        const double cost = index_seconds(n, bits, max_d, m);
        if (cost < best) {
            best = cost;
            p.substrings = m;
            p.tables = std::min(m, max_d + 1);
        }
    }
    p.index_seconds = best;
    p.use_index =
        best < p.brute_seconds && n <= static_cast<int64_t>(std::numeric_limits<uint32_t>::max());
    return p;
}

Edges hamming_index_pairs(const uint8_t* codes, int64_t n, int64_t n_bytes, const PairOptions& opt,
                          int64_t substrings) {
    check_args(n, n_bytes);
    const int64_t bits = 8 * n_bytes;
    const int64_t R = hamming_max_distance(opt.threshold, bits);
    const int64_t m = choose_substrings(n, bits, R, substrings);
    if (R < 0 || n < 2) return Edges{};
    if (m == 0) return hamming_pairs(codes, n, n_bytes, opt);

    const std::vector<Sub> subs = layout(n, bits, n_bytes, m, R);
    const auto groups = table_groups(n, n_bytes, subs);
    const int threads = threads_for(n, bits, R, m, groups.size(), opt.n_threads);
    const int64_t nblocks = (n + kBlock - 1) / kBlock;
    std::vector<std::vector<Hit>> found;
    ExceptionCatcher errors;
    {
        Group g;
        for (const auto& [t0, t1] : groups) {
            build_group(codes, n, n_bytes, R, subs, t0, t1, opt.groups, threads, g);
            // Tasks: (table, block of queries), each with its own hits.
            const int64_t ntasks = static_cast<int64_t>(t1 - t0) * nblocks;
            std::vector<std::vector<Hit>> hits(static_cast<size_t>(ntasks));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
            for (int64_t task = 0; task < ntasks; ++task)
                errors.run([&] {
                    const int64_t b = task % nblocks;
                    query_pairs(g.queries[task / nblocks], b * kBlock,
                                std::min(n, (b + 1) * kBlock), hits[task]);
                });
            errors.rethrow();
            for (auto& h : hits)
                if (!h.empty()) found.push_back(std::move(h));
        }
    }
    std::vector<float> score_of(static_cast<size_t>(R + 1));
    for (int64_t d = 0; d <= R; ++d)
        score_of[d] = static_cast<float>(1.0 - static_cast<double>(d) / static_cast<double>(bits));
    return detail::edges_from_hits(found, n, [&](int32_t d) { return score_of[d]; }, threads);
}

void hamming_index_components(const uint8_t* codes, int64_t n, int64_t n_bytes,
                              const PairOptions& opt, int64_t* labels, int64_t substrings) {
    check_args(n, n_bytes);
    const int64_t bits = 8 * n_bytes;
    const int64_t R = hamming_max_distance(opt.threshold, bits);
    const int64_t m = choose_substrings(n, bits, R, substrings);
    if (R >= 0 && n >= 2 && m == 0) {
        hamming_components(codes, n, n_bytes, opt, labels);
        return;
    }
    UnionFind uf(n);
    if (R >= 0 && n >= 2) {
        const std::vector<Sub> subs = layout(n, bits, n_bytes, m, R);
        const auto groups = table_groups(n, n_bytes, subs);
        const int threads = threads_for(n, bits, R, m, groups.size(), opt.n_threads);
        std::vector<std::vector<uint32_t>> stamps(
            static_cast<size_t>(threads), std::vector<uint32_t>(static_cast<size_t>(n), kNone));
        Group g;
        ExceptionCatcher errors;
        for (const auto& [t0, t1] : groups) {
            build_group(codes, n, n_bytes, R, subs, t0, t1, opt.groups, threads, g);
            const int64_t count = static_cast<int64_t>(t1 - t0);
            for (int64_t w0 = 0; w0 < n - 1; w0 += kWave) {
                // Tasks: (table, block of the wave's queries).
                const int64_t w1 = std::min(n, w0 + kWave);
                const int64_t nblocks = (w1 - w0 + kBlock - 1) / kBlock;
                const int64_t ntasks = count * nblocks;
                std::vector<std::vector<std::pair<uint32_t, uint32_t>>> found(
                    static_cast<size_t>(ntasks));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
                for (int64_t task = 0; task < ntasks; ++task)
                    errors.run([&] {
                        const int64_t q0 = w0 + (task % nblocks) * kBlock;
                        query_components(g.queries[task / nblocks], q0, std::min(w1, q0 + kBlock),
                                         uf, stamps[thread_id()].data(), found[task]);
                    });
                errors.rethrow();
                for (const auto& edges : found)
                    for (const auto& [i, j] : edges) uf.unite(i, j);
            }
        }
    }
    const std::vector<int64_t> out = uf.labels();
    std::copy(out.begin(), out.end(), labels);
}

}  // namespace icas
