// MinHash LSH banding (see minhash_lsh.hpp). Band by band: hash the band of
// every signature, sort (hash, id), and verify the pairs inside each run of
// equal hashes. The verification loops carry ICAS_CLONES (AVX-512 / AVX2 /
// baseline) and exist once per slot type, as clones cannot be templates.
#include "icas/minhash_lsh.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "candidate_edges.hpp"
#include "icas/minhash.hpp"
#include "icas/parallel.hpp"
#include "icas/simd.hpp"
#include "icas/union_find.hpp"

#ifdef ICAS_HAVE_OPENMP
#include <omp.h>
#endif

namespace icas {

namespace {

using detail::Hit;

template <class S>
inline uint64_t band_hash(const S* p, int64_t rows) {
    uint64_t h = 0x243F6A8885A308D3ULL;
    for (int64_t t = 0; t < rows; ++t) {
        h = (h ^ static_cast<uint64_t>(p[t])) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
    }
    h ^= h >> 31;  // splitmix64 finaliser
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 27;
    return h;
}

template <class S>
inline bool band_equal(const S* a, const S* b, int64_t start, int64_t rows) {
    for (int64_t t = start; t < start + rows; ++t)
        if (a[t] != b[t]) return false;
    return true;
}

// Equal slots of a and b, exact when >= min_count; counted in chunks of 32
// and stopped once even all remaining slots equal could not reach min_count.
template <class S>
inline int64_t count_bounded(const S* a, const S* b, int64_t k, int64_t min_count) {
    constexpr int64_t kChunk = 32;
    int64_t c = 0;
    for (int64_t t0 = 0; t0 < k; t0 += kChunk) {
        const int64_t len = std::min(kChunk, k - t0);
        int64_t cc = 0;
        for (int64_t t = 0; t < len; ++t) cc += a[t0 + t] == b[t0 + t];
        c += cc;
        if (c + (k - t0 - len) < min_count) return c;
    }
    return c;
}

// One band: (hash, id) sorted, and for each position the end of its run of
// equal hashes. Within a run the ids ascend.
struct Band {
    std::vector<std::pair<uint64_t, uint32_t>> order;
    std::vector<uint32_t> end;
};

template <class S>
void build_band(const S* sigs, int64_t n, int64_t k, int64_t start, int64_t rows, int threads,
                Band& band) {
    band.order.resize(static_cast<size_t>(n));
    auto* order = band.order.data();
#pragma omp parallel for schedule(static) num_threads(threads) if (n >= (1 << 18))
    for (int64_t i = 0; i < n; ++i)
        order[i] = {band_hash(sigs + i * k + start, rows), static_cast<uint32_t>(i)};
    std::sort(band.order.begin(), band.order.end());
    band.end.resize(static_cast<size_t>(n));
    for (int64_t p = n - 1; p >= 0; --p)
        band.end[p] = p + 1 < n && order[p + 1].first == order[p].first
                          ? band.end[p + 1]
                          : static_cast<uint32_t>(p + 1);
}

template <class S>
struct Ctx {
    const S* sigs;
    int64_t k;
    int64_t rows;
    int64_t t;  // the band
    int64_t min_count;
    const Band* band;
    const int64_t* groups;
};

// True when band t is the first band whose slots the pair shares (false on
// a mere hash collision in band t). Keeps each pair exactly once.
template <class S>
inline bool first_shared_band(const Ctx<S>& c, const S* a, const S* b) {
    if (!band_equal(a, b, c.t * c.rows, c.rows)) return false;
    for (int64_t u = 0; u < c.t; ++u)
        if (band_equal(a, b, u * c.rows, c.rows)) return false;
    return true;
}

template <class S>
inline void pairs_range(const Ctx<S>& c, int64_t p0, int64_t p1, std::vector<Hit>& out) {
    const auto& order = c.band->order;
    for (int64_t p = p0; p < p1; ++p) {
        const uint32_t i = order[p].second;
        const S* a = c.sigs + static_cast<int64_t>(i) * c.k;
        for (int64_t q = p + 1, e = c.band->end[p]; q < e; ++q) {
            const uint32_t j = order[q].second;
            if (c.groups != nullptr && c.groups[i] == c.groups[j]) continue;
            const S* b = c.sigs + static_cast<int64_t>(j) * c.k;
            if (!first_shared_band(c, a, b)) continue;
            const int64_t count = count_bounded(a, b, c.k, c.min_count);
            if (count >= c.min_count) out.push_back({i, j, static_cast<int32_t>(count)});
        }
    }
}

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

// stamp[r] == i: signature i already reached the component of root r (stale
// stamps are harmless, see mih.cpp).
template <class S>
inline void components_range(const Ctx<S>& c, int64_t p0, int64_t p1, const UnionFind& uf,
                             uint32_t* stamp, std::vector<std::pair<uint32_t, uint32_t>>& out) {
    const auto& order = c.band->order;
    for (int64_t p = p0; p < p1; ++p) {
        const int64_t e = c.band->end[p];
        if (e - p < 2) continue;
        const uint32_t i = order[p].second;
        const S* a = c.sigs + static_cast<int64_t>(i) * c.k;
        stamp[uf.find_const(i)] = i;
        for (int64_t q = p + 1; q < e; ++q) {
            const uint32_t j = order[q].second;
            if (c.groups != nullptr && c.groups[i] == c.groups[j]) continue;
            const int64_t rj = uf.find_const(j);
            if (stamp[rj] == i) continue;
            const S* b = c.sigs + static_cast<int64_t>(j) * c.k;
            if (!band_equal(a, b, c.t * c.rows, c.rows) ||
                count_bounded(a, b, c.k, c.min_count) < c.min_count)
                continue;
            stamp[rj] = i;
            out.emplace_back(i, j);
        }
    }
}

using PairList = std::vector<std::pair<uint32_t, uint32_t>>;

ICAS_CLONES __attribute__((flatten)) void lsh_pairs_range(const Ctx<uint64_t>& c, int64_t p0,
                                                          int64_t p1, std::vector<Hit>& out) {
    pairs_range(c, p0, p1, out);
}
ICAS_CLONES __attribute__((flatten)) void lsh_pairs_range(const Ctx<uint32_t>& c, int64_t p0,
                                                          int64_t p1, std::vector<Hit>& out) {
    pairs_range(c, p0, p1, out);
}
ICAS_CLONES __attribute__((flatten)) void lsh_components_range(const Ctx<uint64_t>& c, int64_t p0,
                                                               int64_t p1, const UnionFind& uf,
                                                               uint32_t* stamp, PairList& out) {
    components_range(c, p0, p1, uf, stamp, out);
}
ICAS_CLONES __attribute__((flatten)) void lsh_components_range(const Ctx<uint32_t>& c, int64_t p0,
                                                               int64_t p1, const UnionFind& uf,
                                                               uint32_t* stamp, PairList& out) {
    components_range(c, p0, p1, uf, stamp, out);
}

void check_args(int64_t n, int64_t k, int64_t bands, int64_t rows) {
    if (n < 0 || n > static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
        throw std::invalid_argument("number of signatures must be in [0, 2^32), got " +
                                    std::to_string(n));
    if (k < 1 || k > std::numeric_limits<int32_t>::max())
        throw std::invalid_argument("signature length k must be in [1, 2^31), got " +
                                    std::to_string(k));
    if (bands < 1 || rows < 1 || bands > k || rows > k / bands)
        throw std::invalid_argument(
            "bands and rows must be >= 1 with bands * rows <= k = " + std::to_string(k) +
            ", got bands = " + std::to_string(bands) + " and rows = " + std::to_string(rows));
}

// One thread for small inputs: a parallel region per band costs more than
// the work there on a busy machine.
int threads_for(int64_t n, int64_t bands, int n_threads) {
    return n * bands < (int64_t{1} << 18) ? 1 : resolve_threads(n_threads);
}

int thread_id() {
#ifdef ICAS_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

constexpr int64_t kChunk = 256;  // positions per task
constexpr int64_t kWave = 4096;  // positions between unions (components)

template <class S>
Edges lsh_pairs(const S* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                const PairOptions& opt) {
    check_args(n, k, bands, rows);
    const int64_t min_count = minhash_min_count(opt.threshold, k);
    if (min_count > k || n < 2) return Edges{};
    const int threads = threads_for(n, bands, opt.n_threads);
    const int64_t nchunks = (n + kChunk - 1) / kChunk;
    std::vector<std::vector<Hit>> found(static_cast<size_t>(nchunks));
    ExceptionCatcher errors;
    {
        Band band;
        for (int64_t t = 0; t < bands; ++t) {
            build_band(sigs, n, k, t * rows, rows, threads, band);
            const Ctx<S> c{sigs, k, rows, t, min_count, &band, opt.groups};
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
            for (int64_t b = 0; b < nchunks; ++b)
                errors.run([&] {
                    lsh_pairs_range(c, b * kChunk, std::min(n, (b + 1) * kChunk), found[b]);
                });
            errors.rethrow();
        }
    }
    const double kd = static_cast<double>(k);
    return detail::edges_from_hits(
        found, n,
        [&](int32_t count) { return static_cast<float>(static_cast<double>(count) / kd); },
        threads);
}

template <class S>
void lsh_components(const S* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                    const PairOptions& opt, int64_t* labels) {
    check_args(n, k, bands, rows);
    const int64_t min_count = minhash_min_count(opt.threshold, k);
    UnionFind uf(n);
    if (min_count <= k && n >= 2) {
        const int threads = threads_for(n, bands, opt.n_threads);
        std::vector<std::vector<uint32_t>> stamps(
            static_cast<size_t>(threads), std::vector<uint32_t>(static_cast<size_t>(n), kNone));
        Band band;
        ExceptionCatcher errors;
        for (int64_t t = 0; t < bands; ++t) {
            build_band(sigs, n, k, t * rows, rows, threads, band);
            const Ctx<S> c{sigs, k, rows, t, min_count, &band, opt.groups};
            for (int64_t w0 = 0; w0 < n - 1; w0 += kWave) {
                const int64_t w1 = std::min(n, w0 + kWave);
                const int64_t nchunks = (w1 - w0 + kChunk - 1) / kChunk;
                std::vector<PairList> found(static_cast<size_t>(nchunks));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
                for (int64_t b = 0; b < nchunks; ++b)
                    errors.run([&] {
                        const int64_t p0 = w0 + b * kChunk;
                        lsh_components_range(c, p0, std::min(w1, p0 + kChunk), uf,
                                             stamps[thread_id()].data(), found[b]);
                    });
                errors.rethrow();
                for (const auto& chunk : found)
                    for (const auto& [i, j] : chunk) uf.unite(i, j);
            }
        }
    }
    const std::vector<int64_t> out = uf.labels();
    std::copy(out.begin(), out.end(), labels);
}

}  // namespace

Edges minhash_lsh_pairs(const uint64_t* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                        const PairOptions& opt) {
    return lsh_pairs(sigs, n, k, bands, rows, opt);
}
Edges minhash_lsh_pairs(const uint32_t* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                        const PairOptions& opt) {
    return lsh_pairs(sigs, n, k, bands, rows, opt);
}
void minhash_lsh_components(const uint64_t* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                            const PairOptions& opt, int64_t* labels) {
    lsh_components(sigs, n, k, bands, rows, opt, labels);
}
void minhash_lsh_components(const uint32_t* sigs, int64_t n, int64_t k, int64_t bands, int64_t rows,
                            const PairOptions& opt, int64_t* labels) {
    lsh_components(sigs, n, k, bands, rows, opt, labels);
}

}  // namespace icas
