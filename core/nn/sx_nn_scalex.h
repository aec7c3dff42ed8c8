/* sx_nn_scalex — a network trained by the original Python SCALEX, loaded from the folder it
 * wrote (outdir/checkpoint/model.pt + config.pt) into our model type.
 *
 * SCALEX's state_dict keys are the ones our model already uses (sx_nn.h), so the mapping is
 * one to one; the architecture in config.pt must be the one SCALEX builds (one hidden fc
 * layer with BatchNorm and ReLU, a latent fc layer, a decoder fc with one BN per domain and
 * a sigmoid) or the load is refused naming what differs. */
#ifndef SX_NN_SCALEX_H
#define SX_NN_SCALEX_H

#include "sx_error.h"
#include "sx_nn.h"

/* Load `folder`/checkpoint/{model.pt,config.pt}: weights, BN running statistics and
 * num_batches_tracked bit-exact (float32 model; float64 when the checkpoint is float64), the
 * gene list from config.pt, and prep_json {"source": "scalex", "checkpoint": "pytorch"} to
 * mark the origin (SCALEX records no version of itself in the folder). Domain names are not in the checkpoint (SCALEX keeps them in
 * adata.h5ad's obs 'batch' categories): left unset for the caller. Caller frees the model.
 * Errors: SX_EIO / SX_EFORMAT / SX_EUNSUPPORTED from the reader, SX_EUNSUPPORTED for an
 * architecture we do not implement, SX_EFORMAT for a missing or mis-shaped tensor. */
sx_nn_model *sx_nn_model_from_scalex(const char *folder, sx_status *st);

/* The same from explicit file paths (model.pt, config.pt). */
sx_nn_model *sx_nn_model_from_torch(const char *model_pt, const char *config_pt, sx_status *st);

#endif
