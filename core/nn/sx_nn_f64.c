/* sx_nn_f64 — the float64 (reference) instantiation of sx_nn_kernels.inc. */
/* The kernels are short loops over hidden units / genes: full vectorization (O3 cost model)
 * and sqrt without errno (so it vectorizes) are what make the Adam and sparse loops fast. */
#pragma GCC optimize("O3", "-fno-math-errno")
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_nn_internal.h"

#define R double
#define SFX(name) name##_f64
#define GEMM cblas_dgemm
#define RSQRT sqrt
#define REXP exp
#define RLOG log
#define RLOG1P log1p
#define TILE 32
#include "sx_nn_kernels.inc"
