/* fuzz_torch — libFuzzer driver: the input is a PyTorch checkpoint (.pt: a zip holding a
 * pickle and its tensor storages), read as a SCALEX folder's checkpoint/model.pt (every
 * tensor converted) and checkpoint/config.pt (SCALEX's pickled configuration) are. The
 * reader must refuse anything hostile by name and never allocate beyond its bounds. */
#include <stdlib.h>

#include "fz_memfile.h"
#include "sx_torch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_quiet();
    const char *path = fz_memfile("in.pt", data, size);
    sx_status st;
    sx_torch *t = sx_torch_open(path, &st);
    if (t) {
        int n = sx_torch_n_tensors(t);
        for (int i = 0; i < n; i++) {
            sx_torch_info in;
            /* the driver's own buffer is capped; the reader's bounds are what is tested */
            if (sx_torch_info_get(t, i, &in) || in.numel < 0 || in.numel > (1 << 20)) continue;
            double *v = malloc(sizeof *v * (size_t)(in.numel ? in.numel : 1));
            float *w = malloc(sizeof *w * (size_t)(in.numel ? in.numel : 1));
            if (v) sx_torch_tensor_f64(t, i, v, in.numel, &st);
            if (w) sx_torch_tensor_f32(t, i, w, in.numel, &st);
            free(v);
            free(w);
        }
        sx_torch_close(t);
    }
    sx_scalex_config c;
    if (sx_scalex_config_read(path, &c, &st) == SX_OK) sx_scalex_config_clear(&c);
    return 0;
}
