#include "register.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "icas C++ kernels (OpenMP). Use the wrappers in icas.similarity.";
    icas::bind::register_core(m);
    icas::bind::register_orb(m);
    icas::bind::register_tm(m);
    icas::bind::register_hamming(m);
    icas::bind::register_minhash(m);
    icas::bind::register_ssim(m);
    icas::bind::register_resample(m);
    icas::bind::register_mih(m);
}
