// Template matching (TM_SQDIFF_NORMED) similarity bindings.
#include <string>

#include "arrays.hpp"
#include "icas/template_match.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// Images (n, h, w) or (n, h, w, c), or features (n, len): returns len.
int64_t feature_length(const carray<uint8_t>& x, const char* name) {
    require(x.ndim() >= 2 && x.ndim() <= 4,
            std::string(name) + " must have shape (n, h, w), (n, h, w, c) or (n, len), got " +
                shape_of(x));
    int64_t len = 1;
    for (py::ssize_t k = 1; k < x.ndim(); ++k) len *= x.shape(k);
    return len;
}

carray<float> tm_matrix(const carray<uint8_t>& images, int n_threads) {
    const int64_t len = feature_length(images, "images");
    const int64_t n = images.shape(0);
    auto out = empty<float>({n, n});
    const uint8_t* x = images.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        icas::tm_matrix(x, n, len, o, n_threads);
    }
    return out;
}

carray<float> tm_cross(const carray<uint8_t>& a, const carray<uint8_t>& b, int n_threads) {
    const int64_t len = feature_length(a, "a");
    feature_length(b, "b");
    bool same = a.ndim() == b.ndim();
    for (py::ssize_t k = 1; same && k < a.ndim(); ++k) same = a.shape(k) == b.shape(k);
    require(same, "a and b must hold images of one size, got shapes " + shape_of(a) + " and " +
                      shape_of(b));
    const int64_t na = a.shape(0), nb = b.shape(0);
    auto out = empty<float>({na, nb});
    const uint8_t* pa = a.data();
    const uint8_t* pb = b.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        icas::tm_cross(pa, na, pb, nb, len, o, n_threads);
    }
    return out;
}

PairOptions options(double threshold, const std::optional<carray<int64_t>>& groups, py::ssize_t n,
                    int n_threads) {
    PairOptions opt;
    opt.threshold = threshold;
    opt.groups = groups_ptr(groups, n);
    opt.n_threads = n_threads;
    return opt;
}

py::tuple tm_pairs(const carray<uint8_t>& images, double threshold,
                   const std::optional<carray<int64_t>>& groups, int n_threads) {
    const int64_t len = feature_length(images, "images");
    const int64_t n = images.shape(0);
    const PairOptions opt = options(threshold, groups, n, n_threads);
    const uint8_t* x = images.data();
    Edges e;
    {
        py::gil_scoped_release release;
        e = icas::tm_pairs(x, n, len, opt);
    }
    return to_python(std::move(e));
}

carray<int64_t> tm_components(const carray<uint8_t>& images, double threshold,
                              const std::optional<carray<int64_t>>& groups, int n_threads) {
    const int64_t len = feature_length(images, "images");
    const int64_t n = images.shape(0);
    const PairOptions opt = options(threshold, groups, n, n_threads);
    auto labels = empty<int64_t>({n});
    const uint8_t* x = images.data();
    int64_t* out = labels.mutable_data();
    {
        py::gil_scoped_release release;
        icas::tm_components(x, n, len, opt, out);
    }
    return labels;
}

// One image (h, w) or (h, w, c) and a template no larger in either dimension.
double tm_similarity(const carray<uint8_t>& image, const carray<uint8_t>& templ, int n_threads) {
    auto channels = [](const carray<uint8_t>& a, const char* name) -> int64_t {
        require(a.ndim() == 2 || a.ndim() == 3,
                std::string(name) + " must have 2 or 3 dimensions (h, w[, c]), got shape " +
                    shape_of(a));
        return a.ndim() == 3 ? a.shape(2) : 1;
    };
    const int64_t ch = channels(image, "image");
    require(channels(templ, "templ") == ch,
            "image and templ must have the same number of channels, got shapes " + shape_of(image) +
                " and " + shape_of(templ));
    const int64_t ih = image.shape(0), iw = image.shape(1);
    const int64_t th = templ.shape(0), tw = templ.shape(1);
    const uint8_t* pi = image.data();
    const uint8_t* pt = templ.data();
    double s = 0.0;
    {
        py::gil_scoped_release release;
        s = icas::tm_similarity(pi, ih, iw, pt, th, tw, ch, n_threads);
    }
    return s;
}

}  // namespace

void register_tm(py::module_& m) {
    m.def("tm_matrix", &tm_matrix, py::arg("images").noconvert(), py::arg("n_threads") = 0,
          "(n, n) float32 template-matching similarities of images of one size.");
    m.def("tm_cross", &tm_cross, py::arg("a").noconvert(), py::arg("b").noconvert(),
          py::arg("n_threads") = 0, "(na, nb) float32 template-matching similarities.");
    m.def("tm_pairs", &tm_pairs, py::arg("images").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          "Pairs i < j with template-matching similarity >= threshold.");
    m.def("tm_components", &tm_components, py::arg("images").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          "Connected components of the pairs with similarity >= threshold.");
    m.def("tm_similarity", &tm_similarity, py::arg("image").noconvert(),
          py::arg("templ").noconvert(), py::arg("n_threads") = 0,
          "1 - min TM_SQDIFF_NORMED of templ slid over image (templ no larger in either "
          "dimension).");
}

}  // namespace icas::bind
