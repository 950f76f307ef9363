// icas._cuda: the thin binding of the CUDA kernels (cuda/*.cu, plain C++
// entry points in icas_cuda.hpp). Same conventions as cpp/bindings: the
// Python wrappers validate and convert; here shapes are re-checked, pointers
// taken and outputs allocated with the GIL held, and the device work runs
// with the GIL released. CUDA errors surface as RuntimeError.
#include "../cpp/bindings/arrays.hpp"
#include "icas_cuda.hpp"

namespace icas::bind {

namespace {

namespace cu = icas::cuda;

py::tuple to_python(cu::PairList&& p) {
    Edges e;
    e.ij = std::move(p.ij);
    e.score = std::move(p.score);
    return icas::bind::to_python(std::move(e));
}

template <class T>
void require_cols(const carray<T>& a, py::ssize_t cols, const char* what) {
    require(a.ndim() == 2 && a.shape(1) == cols,
            std::string(what) + " must have the same row length");
}

// A new (rows, cols) array filled by fill(out) with the GIL released (every
// pointer fill uses was taken before, with the GIL held).
template <class T, class Fill>
carray<T> filled(py::ssize_t rows, py::ssize_t cols, Fill fill) {
    auto out = empty<T>({rows, cols});
    T* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        fill(o);
    }
    return out;
}

// The pairs find() returns, found with the GIL released.
template <class Find>
py::tuple found(Find find) {
    cu::PairList p;
    {
        py::gil_scoped_release release;
        p = find();
    }
    return to_python(std::move(p));
}

// ------------------------------------------------------------ hamming
carray<int32_t> hamming_matrix(const carray<uint8_t>& codes) {
    require_ndim(codes, 2, "codes");
    const py::ssize_t n = codes.shape(0), nb = codes.shape(1);
    const uint8_t* c = codes.data();
    return filled<int32_t>(n, n, [=](int32_t* o) { cu::hamming_matrix(c, n, nb, o); });
}

carray<int32_t> hamming_cross(const carray<uint8_t>& a, const carray<uint8_t>& b) {
    require_ndim(a, 2, "a");
    require_ndim(b, 2, "b");
    require_cols(b, a.shape(1), "b");
    const py::ssize_t na = a.shape(0), nb = b.shape(0), len = a.shape(1);
    const uint8_t *pa = a.data(), *pb = b.data();
    return filled<int32_t>(na, nb, [=](int32_t* o) { cu::hamming_cross(pa, na, pb, nb, len, o); });
}

py::tuple hamming_pairs(const carray<uint8_t>& codes, double threshold,
                        const std::optional<carray<int64_t>>& groups) {
    require_ndim(codes, 2, "codes");
    const py::ssize_t n = codes.shape(0), nb = codes.shape(1);
    const int64_t* g = groups_ptr(groups, n);
    const uint8_t* c = codes.data();
    return found([=] { return cu::hamming_pairs(c, n, nb, threshold, g); });
}

// ------------------------------------------------------------ minhash
template <class S>
carray<double> minhash_matrix(const carray<S>& sigs) {
    require_ndim(sigs, 2, "signatures");
    const py::ssize_t n = sigs.shape(0), k = sigs.shape(1);
    const S* s = sigs.data();
    return filled<double>(n, n, [=](double* o) { cu::minhash_matrix(s, n, k, o); });
}

template <class S>
carray<double> minhash_cross(const carray<S>& a, const carray<S>& b) {
    require_ndim(a, 2, "a");
    require_ndim(b, 2, "b");
    require_cols(b, a.shape(1), "b");
    const py::ssize_t na = a.shape(0), nb = b.shape(0), k = a.shape(1);
    const S *pa = a.data(), *pb = b.data();
    return filled<double>(na, nb, [=](double* o) { cu::minhash_cross(pa, na, pb, nb, k, o); });
}

template <class S>
py::tuple minhash_pairs(const carray<S>& sigs, double threshold,
                        const std::optional<carray<int64_t>>& groups) {
    require_ndim(sigs, 2, "signatures");
    const py::ssize_t n = sigs.shape(0), k = sigs.shape(1);
    const int64_t* g = groups_ptr(groups, n);
    const S* s = sigs.data();
    return found([=] { return cu::minhash_pairs(s, n, k, threshold, g); });
}

// ------------------------------------------------------------ tm, ssim (images)
// Flattened length of (n, ...) uint8 images.
int64_t row_length(const carray<uint8_t>& x) {
    int64_t len = 1;
    for (py::ssize_t d = 1; d < x.ndim(); ++d) len *= x.shape(d);
    return len;
}

void require_same_image_shape(const carray<uint8_t>& a, const carray<uint8_t>& b) {
    require(a.ndim() == b.ndim(), "a and b must hold images of one shape");
    for (py::ssize_t d = 1; d < a.ndim(); ++d)
        require(a.shape(d) == b.shape(d), "a and b must hold images of one shape");
}

carray<float> tm_matrix(const carray<uint8_t>& x) {
    require(x.ndim() >= 2, "images must have shape (n, h, w[, c])");
    const py::ssize_t n = x.shape(0);
    const int64_t len = row_length(x);
    const uint8_t* p = x.data();
    return filled<float>(n, n, [=](float* o) { cu::tm_matrix(p, n, len, o); });
}

carray<float> tm_cross(const carray<uint8_t>& a, const carray<uint8_t>& b) {
    require(a.ndim() >= 2, "a must have shape (n, h, w[, c])");
    require_same_image_shape(a, b);
    const py::ssize_t na = a.shape(0), nb = b.shape(0);
    const int64_t len = row_length(a);
    const uint8_t *pa = a.data(), *pb = b.data();
    return filled<float>(na, nb, [=](float* o) { cu::tm_cross(pa, na, pb, nb, len, o); });
}

py::tuple tm_pairs(const carray<uint8_t>& x, double threshold,
                   const std::optional<carray<int64_t>>& groups) {
    require(x.ndim() >= 2, "images must have shape (n, h, w[, c])");
    const py::ssize_t n = x.shape(0);
    const int64_t len = row_length(x);
    const int64_t* g = groups_ptr(groups, n);
    const uint8_t* p = x.data();
    return found([=] { return cu::tm_pairs(p, n, len, threshold, g); });
}

carray<float> ssim_matrix(const carray<uint8_t>& x) {
    require_ndim(x, 3, "images");
    const py::ssize_t n = x.shape(0), h = x.shape(1), w = x.shape(2);
    const uint8_t* p = x.data();
    return filled<float>(n, n, [=](float* o) { cu::ssim_matrix(p, n, h, w, o); });
}

carray<float> ssim_cross(const carray<uint8_t>& a, const carray<uint8_t>& b) {
    require_ndim(a, 3, "a");
    require_ndim(b, 3, "b");
    require_same_image_shape(a, b);
    const py::ssize_t na = a.shape(0), nb = b.shape(0), h = a.shape(1), w = a.shape(2);
    const uint8_t *pa = a.data(), *pb = b.data();
    return filled<float>(na, nb, [=](float* o) { cu::ssim_cross(pa, na, pb, nb, h, w, o); });
}

py::tuple ssim_pairs(const carray<uint8_t>& x, double threshold,
                     const std::optional<carray<int64_t>>& groups) {
    require_ndim(x, 3, "images");
    const py::ssize_t n = x.shape(0), h = x.shape(1), w = x.shape(2);
    const int64_t* g = groups_ptr(groups, n);
    const uint8_t* p = x.data();
    return found([=] { return cu::ssim_pairs(p, n, h, w, threshold, g); });
}

// ------------------------------------------------------------ orb
void require_orb(const carray<uint8_t>& d, const carray<int64_t>& o, const char* name) {
    require_ndim(d, 2, name);
    require(d.shape(1) == 32, std::string(name) + " must have shape (total, 32)");
    require_ndim(o, 1, "offsets");
    require(o.shape(0) >= 1, "offsets must have shape (n + 1,)");
}

carray<double> orb_matrix(const carray<uint8_t>& desc, const carray<int64_t>& off) {
    require_orb(desc, off, "descriptors");
    const py::ssize_t n = off.shape(0) - 1, total = desc.shape(0);
    const uint8_t* d = desc.data();
    const int64_t* o = off.data();
    return filled<double>(n, n, [=](double* r) { cu::orb_matrix(d, o, n, total, r); });
}

carray<double> orb_cross(const carray<uint8_t>& da, const carray<int64_t>& oa,
                         const carray<uint8_t>& db, const carray<int64_t>& ob) {
    require_orb(da, oa, "desc_a");
    require_orb(db, ob, "desc_b");
    const py::ssize_t na = oa.shape(0) - 1, nb = ob.shape(0) - 1;
    const py::ssize_t ta = da.shape(0), tb = db.shape(0);
    const uint8_t *pa = da.data(), *pb = db.data();
    const int64_t *qa = oa.data(), *qb = ob.data();
    return filled<double>(na, nb,
                          [=](double* r) { cu::orb_cross(pa, qa, na, ta, pb, qb, nb, tb, r); });
}

py::tuple orb_pairs(const carray<uint8_t>& desc, const carray<int64_t>& off, double threshold,
                    const std::optional<carray<int64_t>>& groups) {
    require_orb(desc, off, "descriptors");
    const py::ssize_t n = off.shape(0) - 1, total = desc.shape(0);
    const int64_t* g = groups_ptr(groups, n);
    const uint8_t* d = desc.data();
    const int64_t* o = off.data();
    return found([=] { return cu::orb_pairs(d, o, n, total, threshold, g); });
}

}  // namespace

}  // namespace icas::bind

PYBIND11_MODULE(_cuda, m) {
    using namespace icas::bind;
    namespace cu = icas::cuda;
    m.doc() = "icas CUDA kernels. Use the wrappers in icas.similarity with device='cuda'.";
    m.def("device_count", &cu::device_count, "CUDA devices that answer (0 without a driver).");
    m.def("describe", &cu::describe, "One line about the CUDA runtime and device.");
    m.def("architectures", &cu::architectures, "CUDA architectures compiled in.");
    const auto g = py::arg("groups") = py::none();
    m.def("hamming_matrix", &hamming_matrix, py::arg("codes").noconvert());
    m.def("hamming_cross", &hamming_cross, py::arg("a").noconvert(), py::arg("b").noconvert());
    m.def("hamming_pairs", &hamming_pairs, py::arg("codes").noconvert(), py::arg("threshold"), g);
    m.def("minhash_matrix", &minhash_matrix<uint64_t>, py::arg("signatures").noconvert());
    m.def("minhash_matrix", &minhash_matrix<uint32_t>, py::arg("signatures").noconvert());
    m.def("minhash_cross", &minhash_cross<uint64_t>, py::arg("a").noconvert(),
          py::arg("b").noconvert());
    m.def("minhash_cross", &minhash_cross<uint32_t>, py::arg("a").noconvert(),
          py::arg("b").noconvert());
    m.def("minhash_pairs", &minhash_pairs<uint64_t>, py::arg("signatures").noconvert(),
          py::arg("threshold"), g);
    m.def("minhash_pairs", &minhash_pairs<uint32_t>, py::arg("signatures").noconvert(),
          py::arg("threshold"), g);
    m.def("tm_matrix", &tm_matrix, py::arg("images").noconvert());
    m.def("tm_cross", &tm_cross, py::arg("a").noconvert(), py::arg("b").noconvert());
    m.def("tm_pairs", &tm_pairs, py::arg("images").noconvert(), py::arg("threshold"), g);
    m.def("ssim_matrix", &ssim_matrix, py::arg("images").noconvert());
    m.def("ssim_cross", &ssim_cross, py::arg("a").noconvert(), py::arg("b").noconvert());
    m.def("ssim_pairs", &ssim_pairs, py::arg("images").noconvert(), py::arg("threshold"), g);
    m.def("orb_matrix", &orb_matrix, py::arg("descriptors").noconvert(),
          py::arg("offsets").noconvert());
    m.def("orb_cross", &orb_cross, py::arg("desc_a").noconvert(), py::arg("off_a").noconvert(),
          py::arg("desc_b").noconvert(), py::arg("off_b").noconvert());
    m.def("orb_pairs", &orb_pairs, py::arg("descriptors").noconvert(),
          py::arg("offsets").noconvert(), py::arg("threshold"), g);
}
