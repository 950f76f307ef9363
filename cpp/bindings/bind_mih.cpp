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
    const int64_t nb = row_width(codes, "codes", "byte per code");
    return threshold_pairs(
        codes, nb, threshold, groups, n_threads,
        [substrings](const uint8_t* c, int64_t n, int64_t w, const PairOptions& opt) {
            return hamming_index_pairs(c, n, w, opt, substrings);
        });
}

carray<int64_t> index_components(const carray<uint8_t>& codes, double threshold,
                                 const std::optional<carray<int64_t>>& groups, int n_threads,
                                 int64_t substrings) {
    const int64_t nb = row_width(codes, "codes", "byte per code");
    return threshold_components(
        codes, nb, threshold, groups, n_threads,
        [substrings](const uint8_t* c, int64_t n, int64_t w, const PairOptions& opt, int64_t* out) {
            hamming_index_components(c, n, w, opt, out, substrings);
        });
}

template <class S>
py::tuple lsh_pairs(const carray<S>& sigs, double threshold, int64_t bands, int64_t rows,
                    const std::optional<carray<int64_t>>& groups, int n_threads) {
    const int64_t k = row_width(sigs, "signatures", "slot per signature");
    return threshold_pairs(sigs, k, threshold, groups, n_threads,
                           [bands, rows](const S* s, int64_t n, int64_t w, const PairOptions& opt) {
                               return minhash_lsh_pairs(s, n, w, bands, rows, opt);
                           });
}

template <class S>
carray<int64_t> lsh_components(const carray<S>& sigs, double threshold, int64_t bands, int64_t rows,
                               const std::optional<carray<int64_t>>& groups, int n_threads) {
    const int64_t k = row_width(sigs, "signatures", "slot per signature");
    return threshold_components(
        sigs, k, threshold, groups, n_threads,
        [bands, rows](const S* s, int64_t n, int64_t w, const PairOptions& opt, int64_t* out) {
            minhash_lsh_components(s, n, w, bands, rows, opt, out);
        });
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
