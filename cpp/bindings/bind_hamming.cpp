// Hamming distance bindings: codes (n, n_bytes) uint8, C-contiguous.
#include <optional>
#include <string>

#include "arrays.hpp"
#include "icas/hamming.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

// Checks a codes array and returns its number of bytes per code.
int64_t code_bytes(const carray<uint8_t>& codes, const char* name) {
    return row_width(codes, name, "byte per code");
}

carray<int32_t> matrix(const carray<uint8_t>& codes, int n_threads, const std::string& kernel) {
    const int64_t nb = code_bytes(codes, "codes");
    const HammingKernel k = hamming_kernel_from_name(kernel);
    const int64_t n = codes.shape(0);
    auto out = empty<int32_t>({n, n});
    const uint8_t* c = codes.data();
    int32_t* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        hamming_matrix(c, n, nb, o, n_threads, k);
    }
    return out;
}

carray<int32_t> cross(const carray<uint8_t>& a, const carray<uint8_t>& b, int n_threads,
                      const std::string& kernel) {
    const int64_t nb = code_bytes(a, "a");
    // (b is checked before its shape goes into the message: arguments are
    // evaluated in no set order, and shape(1) of a 0-d array throws IndexError)
    const int64_t nbb = code_bytes(b, "b");
    require(nbb == nb, "a and b must have the same number of bytes per code, got " +
                           std::to_string(nb) + " and " + std::to_string(nbb));
    const HammingKernel k = hamming_kernel_from_name(kernel);
    const int64_t na = a.shape(0), nbr = b.shape(0);
    auto out = empty<int32_t>({na, nbr});
    const uint8_t* pa = a.data();
    const uint8_t* pb = b.data();
    int32_t* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        hamming_cross(pa, na, pb, nbr, nb, o, n_threads, k);
    }
    return out;
}

py::tuple pairs(const carray<uint8_t>& codes, double threshold,
                const std::optional<carray<int64_t>>& groups, int n_threads,
                const std::string& kernel) {
    const int64_t nb = code_bytes(codes, "codes");
    const HammingKernel k = hamming_kernel_from_name(kernel);
    return threshold_pairs(codes, nb, threshold, groups, n_threads,
                           [k](const uint8_t* c, int64_t n, int64_t w, const PairOptions& opt) {
                               return hamming_pairs(c, n, w, opt, k);
                           });
}

carray<int64_t> components(const carray<uint8_t>& codes, double threshold,
                           const std::optional<carray<int64_t>>& groups, int n_threads,
                           const std::string& kernel) {
    const int64_t nb = code_bytes(codes, "codes");
    const HammingKernel k = hamming_kernel_from_name(kernel);
    return threshold_components(codes, nb, threshold, groups, n_threads,
                                [k](const uint8_t* c, int64_t n, int64_t w, const PairOptions& opt,
                                    int64_t* out) { hamming_components(c, n, w, opt, out, k); });
}

}  // namespace

void register_hamming(py::module_& m) {
    m.def("hamming_kernels", &hamming_kernels,
          "Popcount kernels this CPU runs, fastest first (the first is used by 'auto').");
    m.def("hamming_max_distance", &hamming_max_distance, py::arg("threshold"), py::arg("bits"),
          "Largest distance d with 1 - d / bits >= threshold (float64), or -1.");
    m.def("hamming_matrix", &matrix, py::arg("codes").noconvert(), py::arg("n_threads") = 0,
          py::arg("kernel") = "auto", "Bit distances (n, n) int32 of codes (n, n_bytes) uint8.");
    m.def("hamming_cross", &cross, py::arg("a").noconvert(), py::arg("b").noconvert(),
          py::arg("n_threads") = 0, py::arg("kernel") = "auto",
          "Bit distances (na, nb) int32 between two sets of codes.");
    m.def("hamming_pairs", &pairs, py::arg("codes").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          py::arg("kernel") = "auto",
          "Pairs i < j with 1 - d / bits >= threshold: (edges (m, 2) int64, scores (m,) float32).");
    m.def("hamming_components", &components, py::arg("codes").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          py::arg("kernel") = "auto",
          "Connected components (n,) int64 of the hamming_pairs graph.");
}

}  // namespace icas::bind
