/* Whether the dual 16-bit (DSP extension) fast paths are compiled: Arm cores with the DSP extension (Cortex-M4/M7/
 * M33...) in Thumb-2, little-endian, unless -DONW_PORTABLE_KERNELS asks for the plain C loops everywhere. */
#ifndef ONWARD_DSP_H
#define ONWARD_DSP_H

#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && !defined(__ARM_BIG_ENDIAN) && \
    !defined(ONW_PORTABLE_KERNELS)
#define ONW_DSP_KERNELS 1
#else
#define ONW_DSP_KERNELS 0
#endif

#endif
