#pragma once
// ORB similarity: OpenCV's cross-checked brute-force Hamming matching
// (cv2.BFMatcher(NORM_HAMMING, crossCheck=True).match) followed by the ratio
// rule "share of matches whose distance is < 0.75 x the largest match
// distance", for all pairs of images at once.
//
// What OpenCV's crossCheck does (core batchDistance, since late 2018; checked
// against cv2 5.x on real photos and on descriptors with many ties):
// query descriptor q is matched to s = the FIRST train descriptor at minimum
// Hamming distance from q, and kept only if q is the FIRST query descriptor at
// minimum distance from s (mutual first nearest neighbours; ties go to the
// lower index). Matches come in query order. The match set is the same with
// the roles of the two images swapped, so the similarity is symmetric. (Older
// OpenCV did only the train-to-query half of the check: not symmetric.)
//
// The one deliberate deviation from the raw rule: when there are matches and
// the largest match distance is 0 (every match is perfect, e.g. an image
// against itself), the raw rule gives 0 (no d < 0.75 * 0); we return 1.
// With no descriptor on either side, or no match, the similarity is 0.
#include <cstdint>
#include <string>
#include <vector>

#include "icas/pairs.hpp"

namespace icas {

/// Bytes in one ORB descriptor (256 bits).
inline constexpr int64_t kOrbBytes = 32;

/// Ragged ORB descriptors of n images, borrowed (not owned): image i owns
/// rows offsets[i] .. offsets[i + 1] of `descriptors`.
struct OrbImages {
    const uint8_t* descriptors = nullptr;  ///< (total, 32) uint8, row-major
    const int64_t* offsets = nullptr;      ///< (n + 1,) int64
    int64_t n = 0;                         ///< number of images
    int64_t total = 0;                     ///< number of descriptor rows

    /// Descriptors of image i: pointer to its first row, and its row count.
    const uint8_t* rows(int64_t i) const { return descriptors + offsets[i] * kOrbBytes; }
    int64_t count(int64_t i) const { return offsets[i + 1] - offsets[i]; }
};

/// How orb_pairs / orb_components find the pairs to compare. All pairs
/// (index = false) is exact. The index mode is approximate: it compares only
/// images sharing at least `min_shared` pairs of descriptors within Hamming
/// distance `radius` of each other (found by multi-index hashing over all
/// descriptors, see mih.hpp), then computes the exact similarity of those
/// candidates; a pair it misses is a pair whose images share fewer such
/// descriptors (recall is measured in the tests and benchmarks).
struct OrbCandidates {
    bool index = false;  ///< false: every pair (exact); true: index candidates
    int radius = 16;     ///< largest descriptor distance counted as shared, in [0, 256]
    int min_shared = 1;  ///< descriptor pairs two images must share, >= 1
};

/// Throws std::invalid_argument (naming `name`) unless offsets (n_offsets,)
/// starts at 0, never decreases and ends at `total`. n_offsets must be >= 1.
void check_orb_offsets(const int64_t* offsets, int64_t n_offsets, int64_t total,
                       const std::string& name);

/// Cross-checked matches between query rows a (na, 32) and train rows
/// b (nb, 32), exactly as cv2.BFMatcher(NORM_HAMMING, crossCheck=True).match:
/// appends (query index, train index, Hamming distance) in query order.
/// Single-threaded; the inputs are only read.
void orb_matches(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb,
                 std::vector<int64_t>& query, std::vector<int64_t>& train,
                 std::vector<int32_t>& distance);

/// Similarity in [0, 1] of two descriptor sets a (na, 32) and b (nb, 32)
/// (see the file comment). Symmetric. Single-threaded.
double orb_similarity(const uint8_t* a, int64_t na, const uint8_t* b, int64_t nb);

/// out (n, n) float64, row-major, caller-owned: out[i, j] = similarity of
/// images i and j (symmetric, so each pair is computed once and mirrored;
/// the diagonal is 1 for an image with descriptors, 0 without). OpenMP over
/// pairs with `n_threads` (0 default, -1 all cores).
void orb_matrix(const OrbImages& images, double* out, int n_threads);

/// out (a.n, b.n) float64, row-major, caller-owned: out[i, j] = similarity of
/// image i of `a` and image j of `b`. OpenMP over pairs.
void orb_cross(const OrbImages& a, const OrbImages& b, double* out, int n_threads);

/// Pairs i < j (different groups when opt.groups is set) whose similarity is
/// >= opt.threshold, ordered by (i, j) for any thread count.
/// With how.index, only the candidates of orb_index_candidates are compared
/// (approximate; see OrbCandidates).
Edges orb_pairs(const OrbImages& images, const PairOptions& opt, const OrbCandidates& how = {});

/// Connected components of the graph of orb_pairs, written to labels (n,)
/// (caller-owned) numbered in order of first appearance.
/// With how.index, the components of the index-mode orb_pairs.
void orb_components(const OrbImages& images, const PairOptions& opt, int64_t* labels,
                    const OrbCandidates& how = {});

/// Candidate image pairs of the index mode (see OrbCandidates), flat
/// (m, 2) row-major with i < j, sorted by (i, j), pairs of equal opt.groups
/// left out; opt.threshold is ignored. Memory: the descriptor pairs within
/// `radius` (16 bytes each) are held at once. OpenMP with opt.n_threads; the
/// result does not depend on the thread count. Throws std::invalid_argument
/// for a radius outside [0, 256] or min_shared < 1.
std::vector<int64_t> orb_index_candidates(const OrbImages& images, const OrbCandidates& how,
                                          const PairOptions& opt);

/// The pairs among `candidates` (flat (m, 2), i < j, sorted by (i, j), not
/// owned) whose exact similarity is >= opt.threshold, in the same order.
/// opt.groups is not consulted (the candidates are taken as given). OpenMP
/// over the candidates.
Edges orb_pairs_among(const OrbImages& images, const int64_t* candidates, int64_t m,
                      const PairOptions& opt);

/// The matching kernel in use: "avx512-vpopcntdq" (CPU with AVX-512
/// VPOPCNTDQ) or "portable" (scalar popcount, AVX2/AVX-512 clones).
std::string orb_kernel();

/// For tests: force the portable kernel even on a CPU with VPOPCNTDQ (true),
/// or go back to the automatic choice (false). Not to be called while a
/// kernel runs on another thread.
void orb_force_portable(bool on);

}  // namespace icas
