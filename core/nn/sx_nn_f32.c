/* sx_nn_f32 — the float32 (production) instantiation of sx_nn_kernels.inc. */
/* The kernels are short loops over hidden units / genes: full vectorization (O3 cost model)
 * and sqrt without errno (so it vectorizes) are what make the Adam and sparse loops fast. */
#pragma GCC optimize("O3", "-fno-math-errno")
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_nn_internal.h"

#define R float
#define SFX(name) name##_f32
#define GEMM cblas_sgemm
#define RSQRT sqrtf
#define REXP expf
#define RLOG logf
#define RLOG1P log1pf
#define TILE 64
#include "sx_nn_kernels.inc"
