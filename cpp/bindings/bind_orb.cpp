// ORB similarity bindings: ragged descriptors as (total, 32) uint8 + offsets (n + 1,) int64.
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "icas/orb_match.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

void require_rows(const carray<uint8_t>& d, const char* name) {
    require_ndim(d, 2, name);
    require(d.shape(1) == kOrbBytes,
            std::string(name) + " must have shape (total, 32), got " + shape_of(d));
}

OrbImages images_of(const carray<uint8_t>& desc, const carray<int64_t>& offsets, const char* dname,
                    const char* oname) {
    require_rows(desc, dname);
    require_ndim(offsets, 1, oname);
    check_orb_offsets(offsets.data(), offsets.shape(0), desc.shape(0), oname);
    OrbImages im;
    im.descriptors = desc.data();
    im.offsets = offsets.data();
    im.n = offsets.shape(0) - 1;
    im.total = desc.shape(0);
    return im;
}

carray<double> matrix(const carray<uint8_t>& desc, const carray<int64_t>& offsets, int n_threads) {
    const OrbImages im = images_of(desc, offsets, "descriptors", "offsets");
    auto out = empty<double>({im.n, im.n});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        orb_matrix(im, o, n_threads);
    }
    return out;
}

carray<double> cross(const carray<uint8_t>& desc_a, const carray<int64_t>& off_a,
                     const carray<uint8_t>& desc_b, const carray<int64_t>& off_b, int n_threads) {
    const OrbImages a = images_of(desc_a, off_a, "desc_a", "off_a");
    const OrbImages b = images_of(desc_b, off_b, "desc_b", "off_b");
    auto out = empty<double>({a.n, b.n});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        orb_cross(a, b, o, n_threads);
    }
    return out;
}

OrbCandidates candidates_of(bool index, int radius, int min_shared) {
    OrbCandidates how;
    how.index = index;
    how.radius = radius;
    how.min_shared = min_shared;
    return how;
}

py::tuple pairs(const carray<uint8_t>& desc, const carray<int64_t>& offsets, double threshold,
                const std::optional<carray<int64_t>>& groups, int n_threads, bool index, int radius,
                int min_shared) {
    const OrbCandidates how = candidates_of(index, radius, min_shared);
    const OrbImages im = images_of(desc, offsets, "descriptors", "offsets");
    PairOptions opt;
    opt.threshold = threshold;
    opt.groups = groups_ptr(groups, im.n);
    opt.n_threads = n_threads;
    Edges e;
    {
        py::gil_scoped_release release;
        e = orb_pairs(im, opt, how);
    }
    return to_python(std::move(e));
}

carray<int64_t> components(const carray<uint8_t>& desc, const carray<int64_t>& offsets,
                           double threshold, const std::optional<carray<int64_t>>& groups,
                           int n_threads, bool index, int radius, int min_shared) {
    const OrbCandidates how = candidates_of(index, radius, min_shared);
    const OrbImages im = images_of(desc, offsets, "descriptors", "offsets");
    PairOptions opt;
    opt.threshold = threshold;
    opt.groups = groups_ptr(groups, im.n);
    opt.n_threads = n_threads;
    auto labels = empty<int64_t>({im.n});
    int64_t* out = labels.mutable_data();
    {
        py::gil_scoped_release release;
        orb_components(im, opt, out, how);
    }
    return labels;
}

py::tuple matches(const carray<uint8_t>& query, const carray<uint8_t>& train) {
    require_rows(query, "query");
    require_rows(train, "train");
    std::vector<int64_t> qi, ti;
    std::vector<int32_t> dist;
    const uint8_t* q = query.data();
    const uint8_t* t = train.data();
    const int64_t nq = query.shape(0), nt = train.shape(0);
    {
        py::gil_scoped_release release;
        orb_matches(q, nq, t, nt, qi, ti, dist);
    }
    const py::ssize_t m = static_cast<py::ssize_t>(qi.size());
    return py::make_tuple(from_vector(std::move(qi), {m}), from_vector(std::move(ti), {m}),
                          from_vector(std::move(dist), {m}));
}

}  // namespace

void register_orb(py::module_& m) {
    m.def("orb_matrix", &matrix, py::arg("descriptors").noconvert(), py::arg("offsets").noconvert(),
          py::arg("n_threads") = 0, "ORB similarity of every pair of images: (n, n) float64.");
    m.def("orb_cross", &cross, py::arg("desc_a").noconvert(), py::arg("off_a").noconvert(),
          py::arg("desc_b").noconvert(), py::arg("off_b").noconvert(), py::arg("n_threads") = 0,
          "ORB similarity of images of A x images of B: (na, nb) float64.");
    m.def(
        "orb_pairs", &pairs, py::arg("descriptors").noconvert(), py::arg("offsets").noconvert(),
        py::arg("threshold"), py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
        py::arg("index") = false, py::arg("radius") = 16, py::arg("min_shared") = 1,
        "Pairs i < j with ORB similarity >= threshold: (edges (m, 2) int64, scores (m,) float32).");
    m.def("orb_components", &components, py::arg("descriptors").noconvert(),
          py::arg("offsets").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          py::arg("index") = false, py::arg("radius") = 16, py::arg("min_shared") = 1,
          "Connected components of the ORB pairs graph: labels (n,) int64.");
    m.def("orb_matches", &matches, py::arg("query").noconvert(), py::arg("train").noconvert(),
          "Cross-checked Hamming matches as cv2.BFMatcher(NORM_HAMMING, crossCheck=True): "
          "(query_idx (m,) int64, train_idx (m,) int64, distance (m,) int32), in query order.");
    m.def("orb_kernel", &orb_kernel, "The ORB matching kernel in use on this CPU.");
    m.def("_orb_force_portable", &orb_force_portable, py::arg("on"),
          "Testing only: force the portable ORB kernel (True) or restore the automatic choice.");
}

}  // namespace icas::bind
