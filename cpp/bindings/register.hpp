#pragma once
// One registration function per area; module.cpp calls them all.
#include <pybind11/pybind11.h>

namespace icas::bind {
void register_core(pybind11::module_& m);
void register_orb(pybind11::module_& m);
void register_tm(pybind11::module_& m);
void register_hamming(pybind11::module_& m);
void register_minhash(pybind11::module_& m);
void register_ssim(pybind11::module_& m);
void register_resample(pybind11::module_& m);
void register_mih(pybind11::module_& m);
}  // namespace icas::bind
