// Resize binding: an (h, w) uint8 image in, a new (out_h, out_w) uint8 image
// out; the work runs without the GIL so threads resize images in parallel.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "icas/feature_prep.hpp"
#include "icas/harris.hpp"
#include "icas/resample.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

carray<uint8_t> lanczos(const carray<uint8_t>& image, int64_t out_h, int64_t out_w,
                        bool pillow13_order, std::optional<carray<uint8_t>> into) {
    require_ndim(image, 2, "image");
    const int64_t h = image.shape(0), w = image.shape(1);
    resize_lanczos_check(h, w, out_h, out_w);
    // `into`: a caller's (out_h, out_w) array reused from image to image (a
    // fresh 1 MB array per 1024 x 1024 image costs its page faults each time).
    carray<uint8_t> out;
    if (into) {
        require(into->ndim() == 2 && into->shape(0) == out_h && into->shape(1) == out_w &&
                    into->writeable(),
                "into must be a writeable (out_h, out_w) uint8 array");
        require(into->data() + into->size() <= image.data() ||
                    image.data() + image.size() <= into->data(),
                "into must not overlap image");
        out = *into;
    } else {
        out = empty<uint8_t>({out_h, out_w});
    }
    const uint8_t* src = image.data();
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        resize_lanczos(src, h, w, dst, out_h, out_w, pillow13_order);
    }
    return out;
}

carray<float> harris(const carray<uint8_t>& gray) {
    require_ndim(gray, 2, "gray");
    const int64_t h = gray.shape(0), w = gray.shape(1);
    require(h > 0 && w > 0, "gray must not be empty");
    auto out = empty<float>({h, w});
    const uint8_t* src = gray.data();
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        harris_response(src, h, w, dst);
    }
    return out;
}

carray<int64_t> strongest_harris(const carray<uint8_t>& gray, int64_t k) {
    require_ndim(gray, 2, "gray");
    require(k >= 0, "k must be >= 0, got " + std::to_string(k));
    const int64_t h = gray.shape(0), w = gray.shape(1);
    require(h > 0 && w > 0, "gray must not be empty");
    std::vector<int64_t> idx(static_cast<size_t>(std::min(k, h * w)));
    const uint8_t* src = gray.data();
    int64_t m = 0;
    {
        py::gil_scoped_release release;
        m = harris_strongest(src, h, w, static_cast<int64_t>(idx.size()), idx.data());
    }
    idx.resize(static_cast<size_t>(m));
    return from_vector(std::move(idx), {m});
}

carray<int64_t> strongest(const carray<float>& response, int64_t k) {
    require(k >= 0, "k must be >= 0, got " + std::to_string(k));
    const float* r = response.data();
    const int64_t size = response.size();
    std::vector<int64_t> idx(static_cast<size_t>(std::min(k, size)));
    int64_t m = 0;
    {
        py::gil_scoped_release release;
        m = strongest_positive(r, size, static_cast<int64_t>(idx.size()), idx.data());
    }
    idx.resize(static_cast<size_t>(m));
    return from_vector(std::move(idx), {m});
}

uint64_t row_fold(const carray<uint8_t>& image, carray<double>& sum, carray<double>& diff) {
    require_ndim(image, 2, "image");
    const int64_t n = image.shape(0);
    require(image.shape(1) == n && n % 2 == 0 && n > 0,
            "image must be square with an even side, got (" + std::to_string(image.shape(0)) +
                ", " + std::to_string(image.shape(1)) + ")");
    for (auto* a : {&sum, &diff}) {
        require(a->ndim() == 2 && a->shape(0) == n / 2 && a->shape(1) == n && a->writeable(),
                "sum and diff must be writeable (n / 2, n) float64 arrays");
    }
    require(sum.data() != diff.data(), "sum and diff must be different arrays");
    const uint8_t* px = image.data();
    double* s = sum.mutable_data();
    double* d = diff.mutable_data();
    py::gil_scoped_release release;
    return dct_row_fold(px, n, s, d);
}

uint64_t row_fold4(const carray<uint8_t>& image, carray<double>& ss, carray<double>& sd,
                   carray<double>& diff) {
    require_ndim(image, 2, "image");
    const int64_t n = image.shape(0);
    require(image.shape(1) == n && n % 4 == 0 && n > 0,
            "image must be square with a side that is a multiple of 4, got (" +
                std::to_string(image.shape(0)) + ", " + std::to_string(image.shape(1)) + ")");
    for (auto* a : {&ss, &sd}) {
        require(a->ndim() == 2 && a->shape(0) == n / 4 && a->shape(1) == n && a->writeable(),
                "ss and sd must be writeable (n / 4, n) float64 arrays");
    }
    require(diff.ndim() == 2 && diff.shape(0) == n / 2 && diff.shape(1) == n && diff.writeable(),
            "diff must be a writeable (n / 2, n) float64 array");
    require(ss.data() != sd.data(), "ss and sd must be different arrays");
    const uint8_t* px = image.data();
    double* a = ss.mutable_data();
    double* b = sd.mutable_data();
    double* d = diff.mutable_data();
    py::gil_scoped_release release;
    return dct_row_fold4(px, n, a, b, d);
}

}  // namespace

void register_resample(py::module_& m) {
    m.def("resize_lanczos", &lanczos, py::arg("image").noconvert(), py::arg("out_h"),
          py::arg("out_w"), py::arg("pillow13_order") = true,
          py::arg("into").noconvert() = py::none(),
          "Pillow's LANCZOS resize of an (h, w) uint8 image to (out_h, out_w) uint8, bit for bit; "
          "pillow13_order=False gives the order of passes of Pillow 10 to 12. With `into` (a "
          "writeable (out_h, out_w) uint8 array) the result is written there and returned.");
    m.def("harris_response", &harris, py::arg("gray").noconvert(),
          "cv2.cornerHarris(float32(gray), 2, 3, 0.04) of an (h, w) uint8 image, as OpenCV rounds "
          "it on an AVX CPU: (h, w) float32.");
    m.def("harris_strongest", &strongest_harris, py::arg("gray").noconvert(), py::arg("k"),
          "strongest_positive(harris_response(gray), k) in one call: (m,) int64.");
    m.def("strongest_positive", &strongest, py::arg("response").noconvert(), py::arg("k"),
          "Flat indices of the up to k largest positive float32 values, strongest first, ties "
          "in index order: (m,) int64.");
    m.def("dct_row_fold", &row_fold, py::arg("image").noconvert(), py::arg("sum").noconvert(),
          py::arg("diff").noconvert(),
          "Row fold of an (n, n) uint8 image, n even, into sum and diff ((n/2, n) float64, "
          "caller-owned): top + bottom and top - bottom (bottom rows reversed); returns the sum "
          "of all pixels.");
    m.def("dct_row_fold4", &row_fold4, py::arg("image").noconvert(), py::arg("ss").noconvert(),
          py::arg("sd").noconvert(), py::arg("diff").noconvert(),
          "dct_row_fold with the sum folded once more (n a multiple of 4): ss, sd (n/4, n) and "
          "diff (n/2, n) float64, caller-owned; returns the sum of all pixels.");
}

}  // namespace icas::bind
