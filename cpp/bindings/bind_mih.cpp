// Candidate-search bindings: multi-index hashing for Hamming codes (n, n_bytes)
// uint8 and LSH banding for MinHash signatures (n, k) uint64 / uint32, all
// C-contiguous. The LSH functions are bound once per slot type; with
// .noconvert() pybind11 picks the overload matching the array's dtype.
#include <optional>
#include <string>

#include "arrays.hpp"
#include "icas/mih.hpp"
#include "icas/minhash_lsh.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

int64_t code_bytes(const carray<uint8_t>& codes) {
    require_ndim(codes, 2, "codes");
    require(codes.shape(1) >= 1, "codes must have at least 1 byte per code, got shape (" +
                                     std::to_string(codes.shape(0)) + ", 0)");
    return codes.shape(1);
}

py::dict plan(int64_t n, int64_t bits, int64_t max_distance) {
    const MihPlan p = mih_plan(n, bits, max_distance);
    py::dict d;
    d["substrings"] = p.substrings;
    d["tables"] = p.tables;
    d["max_distance"] = p.max_distance;
    d["index_seconds"] = p.index_seconds;
    d["brute_seconds"] = p.brute_seconds;
    d["use_index"] = p.use_index;
    return d;
}

py::tuple index_pairs(const carray<uint8_t>& codes, double threshold,
                      const std::optional<carray<int64_t>>& groups, int n_threads,
                      int64_t substrings) {
    const int64_t nb = code_bytes(codes);
    const int64_t n = codes.shape(0);
    const PairOptions opt{threshold, groups_ptr(groups, n), n_threads};
    const uint8_t* c = codes.data();
    Edges e;
    {
        py::gil_scoped_release release;
        e = hamming_index_pairs(c, n, nb, opt, substrings);
    }
    return to_python(std::move(e));
}

carray<int64_t> index_components(const carray<uint8_t>& codes, double threshold,
                                 const std::optional<carray<int64_t>>& groups, int n_threads,
                                 int64_t substrings) {
    const int64_t nb = code_bytes(codes);
    const int64_t n = codes.shape(0);
    const PairOptions opt{threshold, groups_ptr(groups, n), n_threads};
    auto labels = empty<int64_t>({n});
    const uint8_t* c = codes.data();
    int64_t* out = labels.mutable_data();
    {
        py::gil_scoped_release release;
        hamming_index_components(c, n, nb, opt, out, substrings);
    }
    return labels;
}

template <class S>
int64_t slots(const carray<S>& sigs) {
    require_ndim(sigs, 2, "signatures");
    require(sigs.shape(1) >= 1, "signatures must have at least 1 slot per signature, got shape (" +
                                    std::to_string(sigs.shape(0)) + ", 0)");
    return sigs.shape(1);
}

template <class S>
py::tuple lsh_pairs(const carray<S>& sigs, double threshold, int64_t bands, int64_t rows,
                    const std::optional<carray<int64_t>>& groups, int n_threads) {
    const int64_t k = slots(sigs);
    const int64_t n = sigs.shape(0);
    const PairOptions opt{threshold, groups_ptr(groups, n), n_threads};
    const S* s = sigs.data();
    Edges e;
    {
        py::gil_scoped_release release;
        e = minhash_lsh_pairs(s, n, k, bands, rows, opt);
    }
    return to_python(std::move(e));
}

template <class S>
carray<int64_t> lsh_components(const carray<S>& sigs, double threshold, int64_t bands, int64_t rows,
                               const std::optional<carray<int64_t>>& groups, int n_threads) {
    const int64_t k = slots(sigs);
    const int64_t n = sigs.shape(0);
    const PairOptions opt{threshold, groups_ptr(groups, n), n_threads};
    auto labels = empty<int64_t>({n});
    const S* s = sigs.data();
    int64_t* out = labels.mutable_data();
    {
        py::gil_scoped_release release;
        minhash_lsh_components(s, n, k, bands, rows, opt, out);
    }
    return labels;
}

template <class S>
void register_slot_type(py::module_& m) {
    m.def("minhash_lsh_pairs", &lsh_pairs<S>, py::arg("signatures").noconvert(),
          py::arg("threshold"), py::arg("bands"), py::arg("rows"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          "Pairs i < j sharing a band with similarity >= threshold: (edges, scores).");
    m.def("minhash_lsh_components", &lsh_components<S>, py::arg("signatures").noconvert(),
          py::arg("threshold"), py::arg("bands"), py::arg("rows"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          "Connected components (n,) int64 of the minhash_lsh_pairs graph.");
}

}  // namespace

void register_mih(py::module_& m) {
    m.def("mih_max_substring_bits", &mih_max_substring_bits, py::arg("n"),
          "Longest substring (bits) the multi-index uses for n codes.");
    m.def("mih_plan", &plan, py::arg("n"), py::arg("bits"), py::arg("max_distance"),
          "The multi-index plan: substrings, tables, cost estimates (s), use_index.");
    m.def("hamming_index_pairs", &index_pairs, py::arg("codes").noconvert(), py::arg("threshold"),
          py::arg("groups").noconvert() = py::none(), py::arg("n_threads") = 0,
          py::arg("substrings") = 0,
          "hamming_pairs by multi-index hashing (substrings: 0 plan, -1 index, m >= 1).");
    m.def("hamming_index_components", &index_components, py::arg("codes").noconvert(),
          py::arg("threshold"), py::arg("groups").noconvert() = py::none(),
          py::arg("n_threads") = 0, py::arg("substrings") = 0,
          "hamming_components by multi-index hashing.");
    register_slot_type<uint64_t>(m);
    register_slot_type<uint32_t>(m);
}

}  // namespace icas::bind
