// SSIM kernel bindings: check shapes, take pointers and allocate outputs with
// the GIL held, then compute without it.
#include <optional>
#include <string>

#include "arrays.hpp"
#include "icas/ssim.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

using Images = carray<uint8_t>;

void check_images(const Images& images, const char* name) {
    require_ndim(images, 3, name);
    if (images.shape(0) > 0) ssim_check_size(images.shape(1), images.shape(2));
}

carray<float> matrix(const Images& images, int n_threads) {
    check_images(images, "images");
    const py::ssize_t n = images.shape(0);
    auto out = empty<float>({n, n});
    const uint8_t* px = images.data();
    float* o = out.mutable_data();
    const int64_t h = images.shape(1), w = images.shape(2);
    {
        py::gil_scoped_release release;
        ssim_matrix(px, n, h, w, o, n_threads);
    }
    return out;
}

carray<float> cross(const Images& a, const Images& b, int n_threads) {
    check_images(a, "a");
    check_images(b, "b");
    require(a.shape(1) == b.shape(1) && a.shape(2) == b.shape(2),
            "a and b must hold images of one size, got (" + std::to_string(a.shape(1)) + ", " +
                std::to_string(a.shape(2)) + ") and (" + std::to_string(b.shape(1)) + ", " +
                std::to_string(b.shape(2)) + ")");
    const py::ssize_t na = a.shape(0), nb = b.shape(0);
    auto out = empty<float>({na, nb});
    const uint8_t* pa = a.data();
    const uint8_t* pb = b.data();
    float* o = out.mutable_data();
    const int64_t h = a.shape(1), w = a.shape(2);
    {
        py::gil_scoped_release release;
        ssim_cross(pa, na, pb, nb, h, w, o, n_threads);
    }
    return out;
}

py::tuple pairs(const Images& images, double threshold,
                const std::optional<carray<int64_t>>& groups, int n_threads) {
    check_images(images, "images");
    const py::ssize_t n = images.shape(0);
    PairOptions opt;
    opt.threshold = threshold;
    opt.groups = groups_ptr(groups, n);
    opt.n_threads = n_threads;
    const uint8_t* px = images.data();
    const int64_t h = images.shape(1), w = images.shape(2);
    Edges edges;
    {
        py::gil_scoped_release release;
        edges = ssim_pairs(px, n, h, w, opt);
    }
    return to_python(std::move(edges));
}

carray<int64_t> components(const Images& images, double threshold,
                           const std::optional<carray<int64_t>>& groups, int n_threads) {
    check_images(images, "images");
    const py::ssize_t n = images.shape(0);
    PairOptions opt;
    opt.threshold = threshold;
    opt.groups = groups_ptr(groups, n);
    opt.n_threads = n_threads;
    auto labels = empty<int64_t>({n});
    const uint8_t* px = images.data();
    int64_t* out = labels.mutable_data();
    const int64_t h = images.shape(1), w = images.shape(2);
    {
        py::gil_scoped_release release;
        ssim_components(px, n, h, w, opt, out);
    }
    return labels;
}

}  // namespace

void register_ssim(py::module_& m) {
    m.def("ssim_matrix", &matrix, py::arg("images").noconvert(), py::arg("n_threads") = 0,
          "(n, n) float32 mean SSIM of (n, h, w) uint8 images.");
    m.def("ssim_cross", &cross, py::arg("a").noconvert(), py::arg("b").noconvert(),
          py::arg("n_threads") = 0, "(na, nb) float32 mean SSIM of a[i] against b[j].");
    m.def("ssim_pairs", &pairs, py::arg("images").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          "(edges (m, 2) int64, scores (m,) float32) of pairs i < j with SSIM >= threshold.");
    m.def("ssim_components", &components, py::arg("images").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          "(n,) int64 connected components of the pairs with SSIM >= threshold.");
}

}  // namespace icas::bind
