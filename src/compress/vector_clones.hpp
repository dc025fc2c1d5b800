// Internal: runtime choice of the instruction set for the codecs' hot loops.
//
// The build targets baseline x86-64 (SSE2), where the float kernels run at a half to a quarter of
// their AVX2 speed. A function marked with one of these macros is compiled twice, and the loader
// picks the clone the CPU supports (GCC/Clang target_clones), so one binary stays portable.
//
// The two flavours exist because the kernels must round exactly like the ATen reference, which
// itself is compiled per CPU capability with the compiler's default floating-point contraction:
//  - SPLITPIPE_VECTOR_CLONES: AVX2 without FMA. For code whose reference rounds every operation
//    separately (quantization: (x - lo) * inv + 0.5 is three ATen kernels, three roundings).
//  - SPLITPIPE_FMA_CLONES: x86-64-v3 (AVX2 + FMA). For `lo + code * step`, which ATen's addcmul
//    evaluates fused on FMA machines; the compiler contracts it the same way here, and the
//    baseline clone, like ATen's baseline kernel, rounds twice.
#pragma once

// GCC 11 is the first to accept arch=x86-64-v3 in target_clones; other compilers get the
// baseline build (correct, slower; decoded values may then differ from ATen's by one rounding).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && \
    !defined(SPLITPIPE_NO_VECTOR_CLONES)
#define SPLITPIPE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#define SPLITPIPE_FMA_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SPLITPIPE_VECTOR_CLONES
#define SPLITPIPE_FMA_CLONES
#endif
