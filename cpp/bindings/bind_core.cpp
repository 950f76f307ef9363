// Build information and chaining (union-find) bindings.
#include <string>

#include "arrays.hpp"
#include "icas/parallel.hpp"
#include "icas/simd.hpp"
#include "icas/union_find.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

py::dict build_info() {
    py::dict info;
#ifdef ICAS_HAVE_OPENMP
    info["openmp"] = true;
    info["openmp_max_threads"] = resolve_threads(0);
#else
    info["openmp"] = false;
    info["openmp_max_threads"] = 1;
#endif
    info["simd"] = simd_level();
    info["vpopcntdq"] = cpu_has_vpopcntdq();
#if defined(__clang__)
    info["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    info["compiler"] = std::string("gcc ") + __VERSION__;
#else
    info["compiler"] = std::string("unknown");
#endif
    return info;
}

carray<int64_t> connected_components(const carray<int64_t>& edges, int64_t n_items) {
    require_ndim(edges, 2, "edges");
    require(edges.shape(1) == 2, "edges must have shape (m, 2), got (" +
                                     std::to_string(edges.shape(0)) + ", " +
                                     std::to_string(edges.shape(1)) + ")");
    require(n_items >= 0, "n_items must be >= 0");
    auto labels = empty<int64_t>({n_items});
    const int64_t* e = edges.data();
    const int64_t m = edges.shape(0);
    int64_t* out = labels.mutable_data();
    {
        py::gil_scoped_release release;
        icas::connected_components(e, m, n_items, out);
    }
    return labels;
}

}  // namespace

void register_core(py::module_& m) {
    m.def("build_info", &build_info, "What was compiled in and what this CPU uses.");
    m.def("connected_components", &connected_components, py::arg("edges").noconvert(),
          py::arg("n_items"), "Union-find components; labels in order of first appearance.");
}

}  // namespace icas::bind
