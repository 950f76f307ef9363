#include "icas/simd.hpp"

namespace icas {

std::string simd_level() {
#ifdef ICAS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "avx512";
    if (__builtin_cpu_supports("x86-64-v3")) return "avx2";
#endif
    return "baseline";
}

bool cpu_has_vpopcntdq() {
#ifdef ICAS_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vpopcntdq");
#else
    return false;
#endif
}

}  // namespace icas
