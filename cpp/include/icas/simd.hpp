#pragma once
// Run-time SIMD dispatch. The extension is compiled for baseline x86-64 so a
// wheel runs anywhere; hot loops get AVX2 / AVX-512 clones that the loader
// picks for the CPU at hand (GCC/Clang function multi-versioning).
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(ICAS_NO_CLONES)
/// Put on a non-template, non-inline function that owns a whole hot loop:
/// clones cannot be inlined, so a per-pair helper gains nothing from it.
#define ICAS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define ICAS_X86 1
#else
#define ICAS_CLONES
#endif

namespace icas {

/// The widest instruction set level the clones use on this CPU:
/// "avx512" (x86-64-v4), "avx2" (x86-64-v3) or "baseline".
std::string simd_level();

/// True when the CPU has AVX-512 VPOPCNTDQ (vector popcount).
bool cpu_has_vpopcntdq();

}  // namespace icas
