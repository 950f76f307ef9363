#pragma once
// Per-pair formulas shared by the CPU kernels (cpp/src) and the CUDA kernels
// (cuda/): the same source is compiled for both, so the CPU tests cover the
// exact arithmetic the GPU runs. Everything here is a pure function of a few
// exact integers (counts, sums, dot products) plus the rounding steps the
// kernels document; nothing allocates or touches memory beyond its arguments.
//
// ICAS_HD marks a function for host and device under nvcc and is empty for a
// plain C++ compiler.
#include <cstdint>

#if defined(__CUDACC__)
#define ICAS_HD __host__ __device__
#else
#define ICAS_HD
#endif

namespace icas::pair_math {

/// Template matching: 1 - min(sq / (root_a root_b), 1) with
/// sq = |a|^2 + |b|^2 - 2 a.b, from the exact squared norms `na`, `nb`, their
/// square roots and the exact dot product. OpenCV's clamp: the normalised
/// value is kept only while sq < root_a root_b, else it is 1, which also
/// covers an all-black image (a zero norm) on either side.
ICAS_HD inline double tm_score(int64_t na, int64_t nb, double root_a, double root_b, int64_t dot) {
    const double sq = static_cast<double>(na + nb - 2 * dot);
    const double t = root_a * root_b;
    const double v = (t > 0.0 && sq < t) ? sq / t : 1.0;
    return 1.0 - v;
}

/// Hamming similarity 1 - d / bits in double precision.
ICAS_HD inline double hamming_score(int64_t d, int64_t bits) {
    return 1.0 - static_cast<double>(d) / static_cast<double>(bits);
}

/// MinHash similarity: the share of equal slots, count / k in double
/// (datasketch's MinHash.jaccard bit for bit).
ICAS_HD inline double minhash_score(int64_t count, int64_t k) {
    return static_cast<double>(count) / static_cast<double>(k);
}

/// SSIM constants on window sums (7x7 window, N = 49, K1 = 0.01,
/// K2 = 0.03, data range 255, sample covariance): the formula written on sums
/// instead of means scales the luminance terms by N^2 and the contrast terms
/// by N (N - 1). Halves are stored per image and added per pair, while the
/// numerator uses 2 p + c: scaling by 2 is exact, so identical images give
/// exactly 1 in every window.
struct Ssim {
    static constexpr int32_t kN = 49;
    static constexpr double kC1 = (0.01 * 255.0) * (0.01 * 255.0);
    static constexpr double kC2 = (0.03 * 255.0) * (0.03 * 255.0);
    static constexpr float kC1Half = static_cast<float>(kC1 * kN * kN / 2);
    static constexpr float kC2Half = static_cast<float>(kC2 * kN * (kN - 1) / 2);
    static constexpr float kC1Sum = 2 * kC1Half;
    static constexpr float kC2Sum = 2 * kC2Half;
};

/// Per-image statistic of one window from its exact sums Sx and Sxx:
/// q = float(Sx^2) + c1 / 2. (Sx^2 <= (49 * 255)^2 < 2^31.)
ICAS_HD inline float ssim_q(int32_t sx) { return static_cast<float>(sx * sx) + Ssim::kC1Half; }

/// Per-image statistic of one window: v = float(N Sxx - Sx^2) + c2 / 2.
ICAS_HD inline float ssim_v(int32_t sx, int32_t sxx) {
    return static_cast<float>(Ssim::kN * sxx - sx * sx) + Ssim::kC2Half;
}

/// SSIM of one window in float32 from the pair's exact sums: p = Sx Sy,
/// cov = N Sxy - Sx Sy, and the per-image statistics q and v of both images.
/// A window padded with v = +inf gives exactly 0.
ICAS_HD inline float ssim_term(int32_t p, int32_t cov, float qa, float qb, float va, float vb) {
    const float a1 = 2.0f * static_cast<float>(p) + Ssim::kC1Sum;
    const float a2 = 2.0f * static_cast<float>(cov) + Ssim::kC2Sum;
    return (a1 * a2) / ((qa + qb) * (va + vb));
}

/// ORB ratio rule from the cross-checked matches: `count` matches, the
/// largest match distance `max_d`, and `good` matches with 4 d < 3 max_d
/// (d < 0.75 max_d in integers). 0 without a match; 1 when every match is
/// perfect (max_d == 0; the raw rule would give 0).
ICAS_HD inline double orb_ratio(int64_t good, int64_t count, int64_t max_d) {
    if (count == 0) return 0.0;
    if (max_d == 0) return 1.0;
    return static_cast<double>(good) / static_cast<double>(count);
}

/// Whether a match at distance d counts as good next to the largest match
/// distance max_d: d < 0.75 max_d, exact in integers.
ICAS_HD inline bool orb_good(int64_t d, int64_t max_d) { return 4 * d < 3 * max_d; }

}  // namespace icas::pair_math
