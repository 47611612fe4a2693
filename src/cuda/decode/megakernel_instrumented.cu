/*
 * megakernel_instrumented.cu — the decode megakernel built with its
 * instruments (the MEGADELTA_TRACE recording, MEGADELTA_DELAY_SEED's random
 * delays, the MEGADELTA_PROBE timing probes). decode.cu launches it instead
 * of the plain build when any of them is asked for; the same source, so the
 * arithmetic and the schedule are the plain build's.
 */
#define MD_DEC_INSTRUMENTED 1
#include "cuda/decode/megakernel.cu"
