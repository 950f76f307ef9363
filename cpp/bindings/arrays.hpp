#pragma once
// Helpers shared by the bindings: array aliases, shape checks, and moving C++
// vectors into NumPy arrays without a copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "icas/pairs.hpp"

namespace py = pybind11;

namespace icas::bind {

/// C-contiguous array of T. Bindings take it with .noconvert(): the Python
/// wrapper owns the one documented conversion, so nothing is copied here.
template <class T>
using carray = py::array_t<T, py::array::c_style>;

/// Throws std::invalid_argument (ValueError in Python) unless cond holds.
inline void require(bool cond, const std::string& message) {
    if (!cond) throw std::invalid_argument(message);
}

/// Throws unless `a` has `ndim` dimensions; names the argument and its shape.
template <class T>
void require_ndim(const carray<T>& a, py::ssize_t ndim, const char* name) {
    if (a.ndim() == ndim) return;
    std::string shape = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k)
        shape += (k ? ", " : "") + std::to_string(a.shape(k));
    throw std::invalid_argument(std::string(name) + " must have " + std::to_string(ndim) +
                                " dimensions, got shape " + shape + ")");
}

/// A new uninitialised C-contiguous array.
template <class T>
carray<T> empty(std::vector<py::ssize_t> shape) {
    return carray<T>(std::move(shape));
}

/// Moves a vector into a NumPy array of the given shape (no copy).
template <class T>
carray<T> from_vector(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
    auto* owned = new std::vector<T>(std::move(v));
    py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return carray<T>(std::move(shape), owned->data(), free_when_done);
}

/// (edges (m, 2) int64, scores (m,) float32) from a threshold result.
inline py::tuple to_python(Edges&& e) {
    const py::ssize_t m = e.size();
    auto edges = from_vector(std::move(e.ij), {m, 2});
    auto scores = from_vector(std::move(e.score), {m});
    return py::make_tuple(std::move(edges), std::move(scores));
}

/// Pointer to an optional (n,) int64 group array, or null for None.
inline const int64_t* groups_ptr(const std::optional<carray<int64_t>>& groups, py::ssize_t n) {
    if (!groups) return nullptr;
    require(groups->ndim() == 1 && groups->shape(0) == n,
            "groups must have shape (" + std::to_string(n) + ",)");
    return groups->data();
}

/// Checks a row array (n, width), width >= 1 (codes, signatures), and returns
/// its width; `unit` names one column in the message ("byte per code").
template <class T>
int64_t row_width(const carray<T>& rows, const char* name, const char* unit) {
    require_ndim(rows, 2, name);
    require(rows.shape(1) >= 1, std::string(name) + " must have at least 1 " + unit +
                                    ", got shape (" + std::to_string(rows.shape(0)) + ", 0)");
    return rows.shape(1);
}

/// The sparse threshold form over a row array of width `width`: checks the
/// groups, then runs fn(rows, n, width, options) -> Edges without the GIL.
template <class T, class Fn>
py::tuple threshold_pairs(const carray<T>& rows, int64_t width, double threshold,
                          const std::optional<carray<int64_t>>& groups, int n_threads, Fn fn) {
    const int64_t n = rows.shape(0);
    const PairOptions opt{threshold, groups_ptr(groups, n), n_threads};
    const T* r = rows.data();
    Edges e;
    {
        py::gil_scoped_release release;
        e = fn(r, n, width, opt);
    }
    return to_python(std::move(e));
}

/// The components form over a row array: checks the groups, allocates the
/// (n,) int64 labels, then runs fn(rows, n, width, options, labels) without
/// the GIL.
template <class T, class Fn>
carray<int64_t> threshold_components(const carray<T>& rows, int64_t width, double threshold,
                                     const std::optional<carray<int64_t>>& groups, int n_threads,
                                     Fn fn) {
    const int64_t n = rows.shape(0);
    const PairOptions opt{threshold, groups_ptr(groups, n), n_threads};
    auto labels = empty<int64_t>({n});
    const T* r = rows.data();
    int64_t* out = labels.mutable_data();
    {
        py::gil_scoped_release release;
        fn(r, n, width, opt, out);
    }
    return labels;
}

}  // namespace icas::bind
