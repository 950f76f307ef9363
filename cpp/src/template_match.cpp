#include "icas/template_match.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "icas/pair_math.hpp"
#include "icas/parallel.hpp"
#include "icas/simd.hpp"
#include "icas/union_find.hpp"

namespace icas {

namespace {

// ---------------------------------------------------------------- scoring

// The normalised squared difference clamped like cv::matchTemplate (shared
// with the CUDA kernels, see pair_math.hpp).
inline double score_from(int64_t na, int64_t nb, double root_a, double root_b, int64_t dot) {
    return pair_math::tm_score(na, nb, root_a, root_b, dot);
}

// Longest run of uint8 x uint8 products an int32 can sum: 255^2 * 33025 < 2^31.
constexpr int64_t kInt32Run = 32768;
static_assert(kInt32Run * 255 * 255 <= INT32_MAX, "int32 product run overflows");

// ------------------------------------------------------------ Gram tiles

constexpr int64_t kTile = 64;         // items per tile side: one task computes kTile^2 dots
constexpr int64_t kLanes = 32;        // int16 per 512-bit vector; packed rows are padded to it
constexpr int64_t kDepth = 1024;      // feature elements packed per pass (multiple of kLanes)
constexpr int64_t kRows = kTile + 4;  // tile side padded to a multiple of the micro-block
static_assert(kDepth % kLanes == 0, "kDepth must be a multiple of kLanes");
static_assert(kDepth <= kInt32Run, "micro-kernel int32 sums would overflow");

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Threads worth waking for `work` multiply-adds split into `tasks` tasks: a
// parallel region ends in a barrier that waits for every thread to have run,
// which costs a scheduler tick whenever a core is busy elsewhere, so jobs
// under a few milliseconds of work stay on the calling thread.
int threads_for(int n_threads, double work, int64_t tasks) {
    constexpr double kWorkPerThread = 32.0 * 1024 * 1024;  // about 1 ms on one core
    const int64_t by_work = static_cast<int64_t>(work / kWorkPerThread);
    const int64_t t = std::min<int64_t>({resolve_threads(n_threads), tasks, by_work});
    return static_cast<int>(std::max<int64_t>(1, t));
}

// Widens x[r, k0 : k0 + kc] for r < rows (row stride len) into dst
// (rows_padded, kcp) int16, zero-filling the padding: zeros add nothing to a
// dot product, so the micro-kernel runs whole vectors without a tail.
inline void pack(const uint8_t* x, int64_t len, int64_t rows, int64_t rows_padded, int64_t k0,
                 int64_t kc, int64_t kcp, int16_t* dst) {
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* src = x + r * len + k0;
        int16_t* d = dst + r * kcp;
        for (int64_t k = 0; k < kc; ++k) d[k] = src[k];
        for (int64_t k = kc; k < kcp; ++k) d[k] = 0;
    }
    for (int64_t r = rows; r < rows_padded; ++r)
        std::fill(dst + r * kcp, dst + (r + 1) * kcp, int16_t{0});
}

// acc[r][c] += a_r . b_c for an MR x NR block of packed rows (stride kcp).
// Written as MR * NR plain reductions: compilers turn each into vpmaddwd +
// vpaddd over vector accumulators, all kept in registers when MR * NR + MR +
// NR fits the register file (4x4 with AVX-512's 32 registers, 3x4 with 16).
template <int MR, int NR>
__attribute__((always_inline)) inline void micro(const int16_t* __restrict a,
                                                 const int16_t* __restrict b, int64_t kcp,
                                                 int64_t* __restrict acc, int64_t ld) {
    int32_t s[MR][NR] = {};
    for (int64_t k = 0; k < kcp; ++k) {
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (int c = 0; c < NR; ++c)
                s[r][c] += int32_t{a[r * kcp + k]} * int32_t{b[c * kcp + k]};
    }
    for (int r = 0; r < MR; ++r)
        for (int c = 0; c < NR; ++c) acc[r * ld + c] += s[r][c];
}

// acc (ma, mb) with row stride kRows = exact dot products of rows a[0:ma]
// and b[0:mb] (row stride len). With `diagonal` (a and b are the same rows)
// the rows are packed once and only blocks reaching j >= i are computed.
template <int MR, int NR>
__attribute__((always_inline)) inline void tile_impl(const uint8_t* a, int64_t ma, const uint8_t* b,
                                                     int64_t mb, int64_t len, bool diagonal,
                                                     int16_t* pa, int16_t* pb, int64_t* acc) {
    std::fill(acc, acc + kRows * kRows, int64_t{0});
    const int64_t ma_p = round_up(ma, MR), mb_p = round_up(mb, NR);
    for (int64_t k0 = 0; k0 < len; k0 += kDepth) {
        const int64_t kc = std::min(kDepth, len - k0), kcp = round_up(kc, kLanes);
        if (diagonal) {
            pack(a, len, ma, std::max(ma_p, mb_p), k0, kc, kcp, pa);
            pb = pa;
        } else {
            pack(a, len, ma, ma_p, k0, kc, kcp, pa);
            pack(b, len, mb, mb_p, k0, kc, kcp, pb);
        }
        for (int64_t r = 0; r < ma_p; r += MR) {
            const int64_t c0 = diagonal ? r / NR * NR : 0;
            for (int64_t c = c0; c < mb_p; c += NR)
                micro<MR, NR>(pa + r * kcp, pb + c * kcp, kcp, acc + r * kRows + c, kRows);
        }
    }
}

// Two register blockings, each compiled for every ISA level; tile_fn() picks
// the one that fits the register file of this CPU.
ICAS_CLONES void gram_tile_4x4(const uint8_t* a, int64_t ma, const uint8_t* b, int64_t mb,
                               int64_t len, bool diagonal, int16_t* pa, int16_t* pb, int64_t* acc) {
    tile_impl<4, 4>(a, ma, b, mb, len, diagonal, pa, pb, acc);
}

ICAS_CLONES void gram_tile_3x4(const uint8_t* a, int64_t ma, const uint8_t* b, int64_t mb,
                               int64_t len, bool diagonal, int16_t* pa, int16_t* pb, int64_t* acc) {
    tile_impl<3, 4>(a, ma, b, mb, len, diagonal, pa, pb, acc);
}

using TileFn = void (*)(const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t, bool, int16_t*,
                        int16_t*, int64_t*);

TileFn tile_fn() {
    static const TileFn fn = simd_level() == "avx512" ? &gram_tile_4x4 : &gram_tile_3x4;
    return fn;
}

// One task: rows [i0, i0 + mi) of A against rows [j0, j0 + mj) of B.
struct Tile {
    int64_t i0, j0, mi, mj;
    bool diagonal;
};

struct Workspace {
    std::vector<int16_t> pa = std::vector<int16_t>(kRows * kDepth);
    std::vector<int16_t> pb = std::vector<int16_t>(kRows * kDepth);
    std::vector<int64_t> acc = std::vector<int64_t>(kRows * kRows);
};

// Upper-triangle tiles (ib <= jb) of an n x n Gram matrix, ordered by
// (ib, jb). Tiles whose items all share one group are left out.
std::vector<Tile> upper_tiles(int64_t n, const int64_t* groups) {
    const int64_t blocks = (n + kTile - 1) / kTile;
    std::vector<int64_t> gmin(blocks), gmax(blocks);
    if (groups != nullptr) {
        for (int64_t b = 0; b < blocks; ++b) {
            const int64_t lo = b * kTile, hi = std::min(n, lo + kTile);
            const auto [mn, mx] = std::minmax_element(groups + lo, groups + hi);
            gmin[b] = *mn;
            gmax[b] = *mx;
        }
    }
    std::vector<Tile> tiles;
    for (int64_t ib = 0; ib < blocks; ++ib) {
        for (int64_t jb = ib; jb < blocks; ++jb) {
            if (groups != nullptr && gmin[ib] == gmax[ib] && gmin[jb] == gmax[jb] &&
                gmin[ib] == gmin[jb])
                continue;
            const int64_t i0 = ib * kTile, j0 = jb * kTile;
            tiles.push_back({i0, j0, std::min(kTile, n - i0), std::min(kTile, n - j0), ib == jb});
        }
    }
    return tiles;
}

struct AllTiles {
    bool operator()(const Tile&) const { return true; }
};

// Computes the tiles in parallel (dynamic order) and calls
// visit(t, tiles[t], dots, ld) on the worker that computed it, where
// dots[r * ld + c] = a[i0 + r] . b[j0 + c] (for a diagonal tile, valid where
// c >= r). A tile for which wanted(tile) is false when a worker reaches it is
// not computed. Each worker owns its packing buffers; visit and wanted must
// be safe to call from several workers at once.
template <class Visit, class Wanted = AllTiles>
void run_tiles(const uint8_t* a, const uint8_t* b, int64_t len, const std::vector<Tile>& tiles,
               int n_threads, const Visit& visit, const Wanted& wanted = Wanted{}) {
    const int64_t count = static_cast<int64_t>(tiles.size());
    if (count == 0) return;
    const TileFn tile = tile_fn();
    double work = 0.0;
    for (const Tile& t : tiles) work += static_cast<double>(t.mi * t.mj) * static_cast<double>(len);
    const int threads = threads_for(n_threads, work, count);
    ExceptionCatcher errors;
#pragma omp parallel num_threads(threads)
    {
        std::unique_ptr<Workspace> ws;
        errors.run([&] { ws = std::make_unique<Workspace>(); });
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < count; ++t) {
            if (!ws) continue;
            errors.run([&] {
                const Tile& tl = tiles[t];
                if (!wanted(tl)) return;
                tile(a + tl.i0 * len, tl.mi, b + tl.j0 * len, tl.mj, len, tl.diagonal,
                     ws->pa.data(), ws->pb.data(), ws->acc.data());
                visit(t, tl, ws->acc.data(), kRows);
            });
        }
    }
    errors.rethrow();
}

// Squared norms and their square roots (the roots once per image, not per pair).
struct Norms {
    std::vector<int64_t> sq;
    std::vector<double> root;
};

Norms norms_of(const uint8_t* x, int64_t n, int64_t len, int n_threads) {
    Norms out;
    out.sq.resize(static_cast<size_t>(n));
    out.root.resize(static_cast<size_t>(n));
    tm_squared_norms(x, n, len, out.sq.data(), n_threads);
    for (int64_t i = 0; i < n; ++i) out.root[i] = std::sqrt(static_cast<double>(out.sq[i]));
    return out;
}

// Similarity of item i of set A and item j of set B from their dot product.
struct Scorer {
    const Norms& a;
    const Norms& b;
    double operator()(int64_t i, int64_t j, int64_t dot) const {
        return score_from(a.sq[i], b.sq[j], a.root[i], b.root[j], dot);
    }
};

ICAS_CLONES void squared_norm_rows(const uint8_t* x, int64_t first, int64_t last, int64_t len,
                                   int64_t* out) {
    for (int64_t i = first; i < last; ++i) {
        const uint8_t* p = x + i * len;
        int64_t total = 0;
        for (int64_t k0 = 0; k0 < len; k0 += kInt32Run) {
            const int64_t k1 = std::min(len, k0 + kInt32Run);
            int32_t s = 0;
            for (int64_t k = k0; k < k1; ++k) s += int32_t{p[k]} * int32_t{p[k]};
            total += s;
        }
        out[i] = total;
    }
}

// ------------------------------------------------------ sliding (any sizes)

// Sum over k < run of p_q[k] * t[k] for Q windows p_q = p + q * step that
// share one template row: the template is loaded once per vector for all Q.
template <int Q>
__attribute__((always_inline)) inline void dots_block(const int16_t* __restrict p, int64_t step,
                                                      const int16_t* __restrict t, int64_t run,
                                                      int64_t* __restrict out) {
    for (int64_t k0 = 0; k0 < run; k0 += kInt32Run) {
        const int64_t k1 = std::min(run, k0 + kInt32Run);
        int32_t s[Q] = {};
        for (int64_t k = k0; k < k1; ++k) {
            const int32_t tv = t[k];
#pragma GCC unroll 4
            for (int q = 0; q < Q; ++q) s[q] += int32_t{p[q * step + k]} * tv;
        }
        for (int q = 0; q < Q; ++q) out[q] += s[q];
    }
}

// dots[x] = sum over the template of templ * image window at (y, x), for
// every x < ow (image and template widened to int16). Each template row is a
// contiguous run of tw * ch values against the image row at offset x * ch;
// four neighbouring positions are done together.
ICAS_CLONES void sliding_dots_row(const int16_t* image, int64_t iw, const int16_t* templ,
                                  int64_t th, int64_t tw, int64_t ch, int64_t y, int64_t ow,
                                  int64_t* dots) {
    const int64_t run = tw * ch;
    std::fill(dots, dots + ow, int64_t{0});
    for (int64_t ty = 0; ty < th; ++ty) {
        const int16_t* irow = image + (y + ty) * iw * ch;
        const int16_t* trow = templ + ty * run;
        int64_t x = 0;
        for (; x + 4 <= ow; x += 4) dots_block<4>(irow + x * ch, ch, trow, run, dots + x);
        for (; x < ow; ++x) dots_block<1>(irow + x * ch, ch, trow, run, dots + x);
    }
}

}  // namespace

double tm_score(int64_t na, int64_t nb, int64_t dot) {
    const double ra = std::sqrt(static_cast<double>(na));
    const double rb = std::sqrt(static_cast<double>(nb));
    return score_from(na, nb, ra, rb, dot);
}

void tm_squared_norms(const uint8_t* x, int64_t n, int64_t len, int64_t* out, int n_threads) {
    if (n <= 0) return;
    constexpr int64_t kBlock = 16;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    const int threads = threads_for(n_threads, static_cast<double>(n) * len, blocks);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < blocks; ++b)
        squared_norm_rows(x, b * kBlock, std::min(n, (b + 1) * kBlock), len, out);
}

void tm_matrix(const uint8_t* x, int64_t n, int64_t len, float* out, int n_threads) {
    if (n <= 0) return;
    const Norms nm = norms_of(x, n, len, n_threads);
    const Scorer score{nm, nm};
    const std::vector<Tile> tiles = upper_tiles(n, nullptr);
    run_tiles(x, x, len, tiles, n_threads,
              [&](int64_t, const Tile& t, const int64_t* dots, int64_t ld) {
                  for (int64_t r = 0; r < t.mi; ++r) {
                      const int64_t i = t.i0 + r;
                      for (int64_t c = t.diagonal ? r : 0; c < t.mj; ++c) {
                          const int64_t j = t.j0 + c;
                          const float s = static_cast<float>(score(i, j, dots[r * ld + c]));
                          out[i * n + j] = s;
                          out[j * n + i] = s;
                      }
                  }
              });
}

void tm_cross(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb, int64_t len, float* out,
              int n_threads) {
    if (na <= 0 || nb <= 0) return;
    const Norms norm_a = norms_of(a, na, len, n_threads);
    const Norms norm_b = norms_of(b, nb, len, n_threads);
    const Scorer score{norm_a, norm_b};
    std::vector<Tile> tiles;
    for (int64_t i0 = 0; i0 < na; i0 += kTile)
        for (int64_t j0 = 0; j0 < nb; j0 += kTile)
            tiles.push_back({i0, j0, std::min(kTile, na - i0), std::min(kTile, nb - j0), false});
    run_tiles(a, b, len, tiles, n_threads,
              [&](int64_t, const Tile& t, const int64_t* dots, int64_t ld) {
                  for (int64_t r = 0; r < t.mi; ++r) {
                      const int64_t i = t.i0 + r;
                      for (int64_t c = 0; c < t.mj; ++c) {
                          const int64_t j = t.j0 + c;
                          out[i * nb + j] = static_cast<float>(score(i, j, dots[r * ld + c]));
                      }
                  }
              });
}

Edges tm_pairs(const uint8_t* x, int64_t n, int64_t len, const PairOptions& opt) {
    Edges edges;
    if (n <= 1) return edges;
    const Norms nm = norms_of(x, n, len, opt.n_threads);
    const Scorer score{nm, nm};
    const std::vector<Tile> tiles = upper_tiles(n, opt.groups);
    struct Found {
        int64_t i, j;
        float s;
    };
    std::vector<std::vector<Found>> found(tiles.size());
    run_tiles(x, x, len, tiles, opt.n_threads,
              [&](int64_t ti, const Tile& t, const int64_t* dots, int64_t ld) {
                  std::vector<Found>& out = found[ti];
                  for (int64_t r = 0; r < t.mi; ++r) {
                      const int64_t i = t.i0 + r;
                      for (int64_t c = t.diagonal ? r + 1 : 0; c < t.mj; ++c) {
                          const int64_t j = t.j0 + c;
                          if (detail::same_group(opt, i, j)) continue;
                          const double s = score(i, j, dots[r * ld + c]);
                          if (s >= opt.threshold) out.push_back({i, j, static_cast<float>(s)});
                      }
                  }
              });
    // Tiles come ordered by (row block, column block); the edges of one row
    // block are sorted by (i, j) once all its tiles are in.
    std::vector<Found> block;
    for (size_t t = 0; t < tiles.size(); ++t) {
        block.insert(block.end(), found[t].begin(), found[t].end());
        std::vector<Found>().swap(found[t]);
        if (t + 1 == tiles.size() || tiles[t + 1].i0 != tiles[t].i0) {
            std::sort(block.begin(), block.end(), [](const Found& p, const Found& q) {
                return p.i != q.i ? p.i < q.i : p.j < q.j;
            });
            for (const Found& f : block) {
                edges.ij.push_back(f.i);
                edges.ij.push_back(f.j);
                edges.score.push_back(f.s);
            }
            block.clear();
        }
    }
    return edges;
}

void tm_components(const uint8_t* x, int64_t n, int64_t len, const PairOptions& opt,
                   int64_t* labels) {
    if (n <= 0) return;
    UnionFind uf(n);
    if (n > 1) {
        const Norms nm = norms_of(x, n, len, opt.n_threads);
        const Scorer score{nm, nm};
        const std::vector<Tile> tiles = upper_tiles(n, opt.groups);
        // One shared union-find, touched only under the lock and only for
        // O(kTile) operations per tile (each tile costs kTile^2 * len MACs).
        // The order in which workers unite does not change the components,
        // and the labels are numbered by first appearance, so the result is
        // the same for any thread count.
        std::mutex lock;
        auto wanted = [&](const Tile& t) {
            // A tile whose items all sit in one component can add nothing.
            std::lock_guard<std::mutex> guard(lock);
            const int64_t r0 = uf.find(t.i0);
            for (int64_t k = t.i0 + 1; k < t.i0 + t.mi; ++k)
                if (uf.find(k) != r0) return true;
            for (int64_t k = t.j0; k < t.j0 + t.mj; ++k)
                if (uf.find(k) != r0) return true;
            return false;
        };
        run_tiles(
            x, x, len, tiles, opt.n_threads,
            [&](int64_t, const Tile& t, const int64_t* dots, int64_t ld) {
                // Spanning forest of this tile's edges: at most 2 * kTile - 1
                // of them carry all its connectivity.
                int64_t parent[2 * kTile];
                for (int64_t k = 0; k < 2 * kTile; ++k) parent[k] = k;
                auto find = [&](int64_t v) {
                    while (parent[v] != v) v = parent[v] = parent[parent[v]];
                    return v;
                };
                std::vector<std::pair<int64_t, int64_t>> forest;
                for (int64_t r = 0; r < t.mi; ++r) {
                    const int64_t i = t.i0 + r;
                    for (int64_t c = t.diagonal ? r + 1 : 0; c < t.mj; ++c) {
                        const int64_t j = t.j0 + c;
                        if (detail::same_group(opt, i, j)) continue;
                        if (score(i, j, dots[r * ld + c]) < opt.threshold) continue;
                        const int64_t u = find(r), v = find(t.diagonal ? c : kTile + c);
                        if (u == v) continue;
                        parent[u] = v;
                        forest.emplace_back(i, j);
                    }
                }
                std::lock_guard<std::mutex> guard(lock);
                for (const auto& [i, j] : forest) uf.unite(i, j);
            },
            wanted);
    }
    const std::vector<int64_t> out = uf.labels();
    std::copy(out.begin(), out.end(), labels);
}

double tm_similarity(const uint8_t* image, int64_t ih, int64_t iw, const uint8_t* templ, int64_t th,
                     int64_t tw, int64_t channels, int n_threads) {
    if (th < 1 || tw < 1 || channels < 1)
        throw std::invalid_argument("template must have at least one pixel and one channel");
    if (th > ih || tw > iw)
        throw std::invalid_argument("template (" + std::to_string(th) + ", " + std::to_string(tw) +
                                    ") does not fit inside the image (" + std::to_string(ih) +
                                    ", " + std::to_string(iw) + ")");
    int64_t tnorm = 0;
    tm_squared_norms(templ, 1, th * tw * channels, &tnorm, 1);
    const double troot = std::sqrt(static_cast<double>(tnorm));

    // Integral image of per-pixel squared values (summed over channels): the
    // squared norm of every window in O(1), exact in int64.
    std::vector<int64_t> integ(static_cast<size_t>((ih + 1) * (iw + 1)), 0);
    for (int64_t y = 0; y < ih; ++y) {
        int64_t row = 0;
        for (int64_t x = 0; x < iw; ++x) {
            const uint8_t* p = image + (y * iw + x) * channels;
            for (int64_t k = 0; k < channels; ++k) row += int64_t{p[k]} * p[k];
            integ[(y + 1) * (iw + 1) + x + 1] = integ[y * (iw + 1) + x + 1] + row;
        }
    }

    const std::vector<int16_t> image16(image, image + ih * iw * channels);
    const std::vector<int16_t> templ16(templ, templ + th * tw * channels);
    const int64_t oh = ih - th + 1, ow = iw - tw + 1;
    std::vector<double> best_row(static_cast<size_t>(oh), 0.0);
    const double work = static_cast<double>(oh * ow) * static_cast<double>(th * tw * channels);
    const int threads = threads_for(n_threads, work, oh);
    ExceptionCatcher errors;
#pragma omp parallel num_threads(threads)
    {
        std::vector<int64_t> dots;
        errors.run([&] { dots.resize(static_cast<size_t>(ow)); });
#pragma omp for schedule(dynamic, 1)
        for (int64_t y = 0; y < oh; ++y) {
            if (static_cast<int64_t>(dots.size()) != ow) continue;
            sliding_dots_row(image16.data(), iw, templ16.data(), th, tw, channels, y, ow,
                             dots.data());
            double best = 0.0;
            for (int64_t x = 0; x < ow; ++x) {
                const int64_t* top = integ.data() + y * (iw + 1) + x;
                const int64_t* bottom = integ.data() + (y + th) * (iw + 1) + x;
                const int64_t w = bottom[tw] - top[tw] - bottom[0] + top[0];
                const double root = std::sqrt(static_cast<double>(w));
                best = std::max(best, score_from(w, tnorm, root, troot, dots[x]));
            }
            best_row[y] = best;
        }
    }
    errors.rethrow();
    return *std::max_element(best_row.begin(), best_row.end());
}

}  // namespace icas
