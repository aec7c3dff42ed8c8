/* scalex integrate — SCALEX's integration: preprocess, train the VAE, embed (UMAP, Leiden). */
#include "cmd_pipeline.h"
#include "sx_cli.h"

SX_CMD(integrate)
{
    return sx_cli_pipeline_main(SX_JOB_INTEGRATE, "integrate",
                                "Integrate batches: preprocess, train SCALEX's VAE, encode the "
                                "latent, UMAP + Leiden; writes adata.h5ad, checkpoint/model.h5, "
                                "reference.h5, umap.png/pdf, log.txt, result.json.",
                                argc, argv);
}
