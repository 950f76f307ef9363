#pragma once
// Harris corner response of an 8-bit grayscale image, equal bit for bit to
// OpenCV's cv::cornerHarris(float32(image), blockSize 2, ksize 3, k 0.04,
// BORDER_REFLECT_101) as OpenCV 4/5 compute it on an x86-64 CPU with AVX.
//
// Everything up to the response formula is exact: the 3x3 Sobel derivatives
// (scaled by 1/8), their products and the 2x2 box sums are integers over 64
// below 2^24, so any order of operations gives the same floats. Only the
// last formula, r = a c - b^2 - k (a + c)^2, rounds, and OpenCV evaluates it
// three ways over the flattened image (calcHarris): in blocks of 8 values
// as (ac - bb) - k (t t), then at most one block of 4 as (ac - bb) - (k t) t,
// then the last n mod 4 values in double with k = 0.04 as a double. This
// file is built without floating-point contraction so that every product
// and sum rounds as there. A CPU or OpenCV build taking other paths would
// round differently: the Python side checks this function against
// cv2.cornerHarris on probe images before using it.
#include <cstdint>

namespace icas {

/// out (h, w) float32, caller-owned = cornerHarris(float32(gray), 2, 3, 0.04)
/// of the (h, w) uint8 image gray (row-major). h, w >= 1. Single-threaded,
/// thread-safe.
void harris_response(const uint8_t* gray, int64_t h, int64_t w, float* out);

/// strongest_positive (feature_prep.hpp) of harris_response(gray): the flat
/// indices of the up to k strongest positive responses, strongest first,
/// written to out (room for k); returns how many. The response lives in a
/// per-thread buffer. Single-threaded, thread-safe.
int64_t harris_strongest(const uint8_t* gray, int64_t h, int64_t w, int64_t k, int64_t* out);

}  // namespace icas
