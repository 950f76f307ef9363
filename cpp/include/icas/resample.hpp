#pragma once
// Lanczos resize of 8-bit single-channel images, equal bit for bit to
// Pillow's `Image.resize((out_w, out_h), Image.Resampling.LANCZOS)` on a mode
// "L" image (no box, no reducing_gap), which imagehash's pHash runs on every
// image.
//
// It follows Pillow's ImagingResample (libImaging/Resample.c):
// per axis, the filter weights (Lanczos, support 3, widened by the scale when
// shrinking) are computed in double with the same expressions in the same
// order, normalised to sum 1 and rounded to integers with 22 fractional bits.
// Two passes, each output rounded and clipped to uint8: horizontal first over
// only the rows the vertical pass reads, then vertical; or, when the height
// shrinks by more than twice as many pixels as the width (a rule new in
// Pillow 13; older versions always go horizontally first), vertical first
// over the whole image, then horizontal. Sums are exact int32
// arithmetic, so the order of the additions does not matter and both passes
// vectorise: the horizontal pass runs as a vertical one on the transposed
// image. The weights use the C library's sin(), as Pillow does; they are
// cached per (input size, output size) per thread.
#include <cstdint>

namespace icas {

/// Largest input or output side accepted: Pillow passes sizes through C int
/// and the input box through float, which is exact below 2^24.
inline constexpr int64_t kResampleMaxSide = int64_t{1} << 24;

/// Throws std::invalid_argument unless 1 <= every side <= kResampleMaxSide
/// and the filter weights fit in memory (Pillow's own limit), naming the
/// offending argument.
void resize_lanczos_check(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w);

/// dst (out_h, out_w) uint8 = Pillow's LANCZOS resize of src (in_h, in_w)
/// uint8; both row-major and C-contiguous, not owned, and not overlapping.
/// Single-threaded and thread-safe (callers run one image per thread). Uses
/// scratch of at most 3 max(in_w, out_w) max(in_h, out_h) bytes, kept by the
/// calling thread for its next call when under 16 MB, and caches the weights
/// of its last four (input, output) sizes per thread. Checks its sizes like
/// resize_lanczos_check. `pillow13_order` picks Pillow 13's order of passes;
/// false gives the order of Pillow 10 to 12 (always horizontal first).
void resize_lanczos(const uint8_t* src, int64_t in_h, int64_t in_w, uint8_t* dst, int64_t out_h,
                    int64_t out_w, bool pillow13_order = true);

}  // namespace icas
