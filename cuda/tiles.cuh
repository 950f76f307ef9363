#pragma once
// Device memory, error checks and the tile drivers shared by the kernels.
//
// A "fill" writes the values of one tile of pairs (rows i0 .. i0 + mi of the
// first set against rows j0 .. j0 + mj of the second) into a device buffer
// (mi, mj), row-major. The drivers turn fills into the three result forms:
// a dense host matrix (tile by tile, mirrored when symmetric) or the pairs
// i < j a keep-functor accepts, compacted on the device with an atomic
// counter so only kept pairs cross the bus.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "icas_cuda.hpp"

namespace icas::cuda {

/// Throws std::runtime_error naming `what` unless `e` is cudaSuccess.
inline void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                                 cudaGetErrorString(e));
}

/// Checks the last launch (configuration errors) of kernel `what`.
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

/// Owning device array of T (uninitialised).
template <class T>
class DeviceArray {
  public:
    DeviceArray() = default;
    explicit DeviceArray(int64_t count) { reset(count); }
    DeviceArray(const T* host, int64_t count) {
        reset(count);
        if (count > 0)
            check(cudaMemcpy(p_, host, bytes(), cudaMemcpyHostToDevice), "copy to device");
    }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;
    ~DeviceArray() {
        if (p_ != nullptr) cudaFree(p_);
    }
    void reset(int64_t count) {
        if (p_ != nullptr) cudaFree(p_);
        p_ = nullptr;
        n_ = std::max<int64_t>(count, 0);
        // cudaMalloc(0) may return null; one element keeps pointers valid.
        check(cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(bytes(), sizeof(T))),
              "device allocation");
    }
    T* get() const { return p_; }
    int64_t size() const { return n_; }
    size_t bytes() const { return static_cast<size_t>(n_) * sizeof(T); }

  private:
    T* p_ = nullptr;
    int64_t n_ = 0;
};

/// One tile of pairs: rows [i0, i0 + mi) against rows [j0, j0 + mj).
struct Tile {
    int64_t i0, j0, mi, mj;
};

/// Side of a square tile whose values (bytes_per_value each) take at most a
/// quarter of the free device memory (and 256 MiB), capped at `cap` (grid
/// limits of block-per-pair kernels) and at the larger input.
/// The environment variable ICAS_CUDA_TILE (a positive integer) forces the
/// side, so tests can run the multi-tile paths on small inputs.
inline int64_t tile_side(size_t bytes_per_value, int64_t na, int64_t nb, int64_t cap = 8192) {
    if (const char* forced = std::getenv("ICAS_CUDA_TILE")) {
        const long long v = std::atoll(forced);
        if (v > 0) return std::min<int64_t>(v, cap);
    }
    size_t free_bytes = 0, total_bytes = 0;
    check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    const double budget =
        std::min<double>(static_cast<double>(free_bytes) / 4.0, 256.0 * (1 << 20));
    int64_t side = static_cast<int64_t>(std::sqrt(budget / static_cast<double>(bytes_per_value)));
    side = std::clamp<int64_t>(side / 32 * 32, 32, cap);
    return std::max<int64_t>(1, std::min(side, std::max(na, nb)));
}

/// Dense result out (na, nb) on the host (caller-owned). With `symmetric`
/// (na == nb, the same set) only tiles on or above the diagonal are computed
/// and the lower triangle is mirrored from the upper one on the host.
template <class T, class Fill>
void dense(int64_t na, int64_t nb, bool symmetric, T* out, const Fill& fill, int64_t cap = 8192) {
    if (na <= 0 || nb <= 0) return;
    const int64_t side = tile_side(sizeof(T), na, nb, cap);
    DeviceArray<T> tile(side * side);
    for (int64_t i0 = 0; i0 < na; i0 += side) {
        for (int64_t j0 = symmetric ? i0 : 0; j0 < nb; j0 += side) {
            const Tile t{i0, j0, std::min(side, na - i0), std::min(side, nb - j0)};
            fill(t, tile.get());
            check(cudaMemcpy2D(out + i0 * nb + j0, static_cast<size_t>(nb) * sizeof(T), tile.get(),
                               static_cast<size_t>(t.mj) * sizeof(T),
                               static_cast<size_t>(t.mj) * sizeof(T), static_cast<size_t>(t.mi),
                               cudaMemcpyDeviceToHost),
                  "copy tile to host");
        }
    }
    if (symmetric)
        for (int64_t i = 1; i < na; ++i)
            for (int64_t j = 0; j < i; ++j) out[i * nb + j] = out[j * nb + i];
}

/// Appends pairs (i0 + r, j0 + c) of the tile with i < j, groups differing
/// (when given) and keep(value, score) true, at slots taken from `counter`;
/// slots past `capacity` are counted but not written.
template <class T, class Keep>
__global__ void compact_kernel(const T* values, Tile t, const int64_t* groups, Keep keep,
                               int64_t* ij, float* scores, unsigned long long* counter,
                               unsigned long long capacity) {
    const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t r = blockIdx.y * static_cast<int64_t>(blockDim.y) + threadIdx.y;
    if (r >= t.mi || c >= t.mj) return;
    const int64_t i = t.i0 + r, j = t.j0 + c;
    if (i >= j) return;
    if (groups != nullptr && groups[i] == groups[j]) return;
    float s;
    if (!keep(values[r * t.mj + c], s)) return;
    const unsigned long long slot = atomicAdd(counter, 1ULL);
    if (slot >= capacity) return;
    ij[2 * slot] = i;
    ij[2 * slot + 1] = j;
    scores[slot] = s;
}

/// Pairs i < j of n items (upper tiles only) that `keep` accepts, ordered by
/// (i, j). groups: host (n,) or null. Memory on the device: one tile of
/// values plus the kept pairs of one tile.
template <class T, class Fill, class Keep>
PairList pairs(int64_t n, const int64_t* groups, const Fill& fill, const Keep& keep,
               int64_t cap = 8192) {
    PairList result;
    if (n < 2) return result;
    const int64_t side = tile_side(sizeof(T), n, n, cap);
    DeviceArray<T> tile(side * side);
    DeviceArray<int64_t> d_groups(groups != nullptr ? n : 0);
    if (groups != nullptr)
        check(cudaMemcpy(d_groups.get(), groups, d_groups.bytes(), cudaMemcpyHostToDevice),
              "copy groups to device");
    unsigned long long capacity =
        static_cast<unsigned long long>(std::max<int64_t>(side * 4, 4096));
    DeviceArray<int64_t> ij(2 * static_cast<int64_t>(capacity));
    DeviceArray<float> scores(static_cast<int64_t>(capacity));
    DeviceArray<unsigned long long> counter(1);
    const dim3 block(32, 8);
    for (int64_t i0 = 0; i0 < n; i0 += side) {
        for (int64_t j0 = i0; j0 < n; j0 += side) {
            const Tile t{i0, j0, std::min(side, n - i0), std::min(side, n - j0)};
            fill(t, tile.get());
            const dim3 grid(static_cast<unsigned>((t.mj + block.x - 1) / block.x),
                            static_cast<unsigned>((t.mi + block.y - 1) / block.y));
            unsigned long long count = 0;
            for (;;) {
                check(cudaMemset(counter.get(), 0, sizeof(unsigned long long)), "reset counter");
                compact_kernel<<<grid, block>>>(tile.get(), t, groups ? d_groups.get() : nullptr,
                                                keep, ij.get(), scores.get(), counter.get(),
                                                capacity);
                check_launch("compact_kernel");
                check(cudaMemcpy(&count, counter.get(), sizeof(count), cudaMemcpyDeviceToHost),
                      "read pair count");
                if (count <= capacity) break;
                // More pairs than room: grow to fit and compact the same tile again.
                capacity = count;
                ij.reset(2 * static_cast<int64_t>(capacity));
                scores.reset(static_cast<int64_t>(capacity));
            }
            const size_t old = result.score.size();
            result.ij.resize(2 * (old + count));
            result.score.resize(old + count);
            if (count > 0) {
                check(cudaMemcpy(result.ij.data() + 2 * old, ij.get(), 2 * count * sizeof(int64_t),
                                 cudaMemcpyDeviceToHost),
                      "copy pairs to host");
                check(cudaMemcpy(result.score.data() + old, scores.get(), count * sizeof(float),
                                 cudaMemcpyDeviceToHost),
                      "copy scores to host");
            }
        }
    }
    // Atomic slots come in any order: sort by (i, j) for a deterministic result.
    const size_t m = result.score.size();
    std::vector<size_t> order(m);
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
        const int64_t* a = result.ij.data() + 2 * x;
        const int64_t* b = result.ij.data() + 2 * y;
        return a[0] != b[0] ? a[0] < b[0] : a[1] < b[1];
    });
    PairList sorted;
    sorted.ij.resize(2 * m);
    sorted.score.resize(m);
    for (size_t k = 0; k < m; ++k) {
        sorted.ij[2 * k] = result.ij[2 * order[k]];
        sorted.ij[2 * k + 1] = result.ij[2 * order[k] + 1];
        sorted.score[k] = result.score[order[k]];
    }
    return sorted;
}

/// Keeps values v >= threshold (compared in double); score float(v).
template <class T>
struct KeepAtLeast {
    double threshold;
    __device__ bool operator()(T v, float& s) const {
        s = static_cast<float>(v);
        return static_cast<double>(v) >= threshold;
    }
};

/// Grid of (mj / bx, mi / by) blocks for a thread-per-pair tile kernel.
inline dim3 pair_grid(const Tile& t, dim3 block) {
    return dim3(static_cast<unsigned>((t.mj + block.x - 1) / block.x),
                static_cast<unsigned>((t.mi + block.y - 1) / block.y));
}

}  // namespace icas::cuda
