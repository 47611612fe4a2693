/*
 * megakernel_instrumented.cu — the decode megakernel built with its
 * instruments (the MEGADELTA_TRACE recording, MEGADELTA_DELAY_SEED's random
 * delays, the MEGADELTA_PROBE timing probes, MEGADELTA_STOP's early end of a
 * step, MEGADELTA_POLL_NS's back-off). decode.cu launches it instead of the
 * plain build when any of them is asked for; the same source, so the
 * arithmetic and the schedule are the plain build's. (Each build has its own
 * namespace; header functions that differ between the builds, such as
 * md_is_stop, are inline and need whole-program compilation, which the
 * library uses: CUDA_SEPARABLE_COMPILATION OFF.)
 */
#define MD_DEC_INSTRUMENTED 1
#include "cuda/decode/megakernel.cu"
