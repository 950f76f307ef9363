// MinHash signature bindings: signatures (n, k) uint64 or uint32, C-contiguous.
// Each function is bound once per slot type; with .noconvert() pybind11 picks
// the overload matching the array's dtype and never converts.
#include <optional>
#include <string>

#include "arrays.hpp"
#include "icas/minhash.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

// Checks a signature array and returns its number of slots k.
template <class S>
int64_t slots(const carray<S>& sigs, const char* name) {
    return row_width(sigs, name, "slot per signature");
}

template <class S>
carray<double> matrix(const carray<S>& sigs, int n_threads, const std::string& kernel) {
    const int64_t k = slots(sigs, "signatures");
    const MinhashKernel kern = minhash_kernel_from_name(kernel);
    const int64_t n = sigs.shape(0);
    auto out = empty<double>({n, n});
    const S* s = sigs.data();
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        minhash_matrix(s, n, k, o, n_threads, kern);
    }
    return out;
}

template <class S>
carray<double> cross(const carray<S>& a, const carray<S>& b, int n_threads,
                     const std::string& kernel) {
    const int64_t k = slots(a, "a");
    const MinhashKernel kern = minhash_kernel_from_name(kernel);
    // (b is checked before its shape goes into the message: arguments are
    // evaluated in no set order, and shape(1) of a 0-d array throws IndexError)
    const int64_t kb = slots(b, "b");
    require(kb == k, "a and b must have the same number of slots, got " + std::to_string(k) +
                         " and " + std::to_string(kb));
    const int64_t na = a.shape(0), nb = b.shape(0);
    auto out = empty<double>({na, nb});
    const S* pa = a.data();
    const S* pb = b.data();
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        minhash_cross(pa, na, pb, nb, k, o, n_threads, kern);
    }
    return out;
}

template <class S>
py::tuple pairs(const carray<S>& sigs, double threshold,
                const std::optional<carray<int64_t>>& groups, int n_threads,
                const std::string& kernel) {
    const int64_t k = slots(sigs, "signatures");
    const MinhashKernel kern = minhash_kernel_from_name(kernel);
    return threshold_pairs(sigs, k, threshold, groups, n_threads,
                           [kern](const S* s, int64_t n, int64_t w, const PairOptions& opt) {
                               return minhash_pairs(s, n, w, opt, kern);
                           });
}

template <class S>
carray<int64_t> components(const carray<S>& sigs, double threshold,
                           const std::optional<carray<int64_t>>& groups, int n_threads,
                           const std::string& kernel) {
    const int64_t k = slots(sigs, "signatures");
    const MinhashKernel kern = minhash_kernel_from_name(kernel);
    return threshold_components(
        sigs, k, threshold, groups, n_threads,
        [kern](const S* s, int64_t n, int64_t w, const PairOptions& opt, int64_t* out) {
            minhash_components(s, n, w, opt, out, kern);
        });
}

template <class S>
void register_slot_type(py::module_& m) {
    m.def("minhash_matrix", &matrix<S>, py::arg("signatures").noconvert(), py::arg("n_threads") = 0,
          py::arg("kernel") = "auto", "Share of equal slots (n, n) float64 of signatures (n, k).");
    m.def("minhash_cross", &cross<S>, py::arg("a").noconvert(), py::arg("b").noconvert(),
          py::arg("n_threads") = 0, py::arg("kernel") = "auto",
          "Share of equal slots (na, nb) float64 between two sets.");
    m.def("minhash_pairs", &pairs<S>, py::arg("signatures").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          py::arg("kernel") = "auto",
          "Pairs i < j with similarity >= threshold: (edges (m, 2) int64, scores (m,) float32).");
    m.def("minhash_components", &components<S>, py::arg("signatures").noconvert(),
          py::arg("threshold"), py::arg("groups").noconvert() = py::none(),
          py::arg("n_threads") = 0, py::arg("kernel") = "auto",
          "Connected components (n,) int64 of the minhash_pairs graph.");
}

}  // namespace

void register_minhash(py::module_& m) {
    m.def("minhash_kernels", &minhash_kernels,
          "Count kernels this CPU runs, fastest first (the first is used by 'auto').");
    m.def("minhash_min_count", &minhash_min_count, py::arg("threshold"), py::arg("k"),
          "Smallest count c with c / k >= threshold (float64); k + 1 when none.");
    register_slot_type<uint64_t>(m);
    register_slot_type<uint32_t>(m);
}

}  // namespace icas::bind
