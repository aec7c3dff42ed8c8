/* scalex transfer — kNN label transfer in a shared latent space (SCALEX's label_transfer). */
#include "cmd_pipeline.h"
#include "sx_cli.h"

SX_CMD(transfer)
{
    return sx_cli_pipeline_main(SX_JOB_TRANSFER, "transfer",
                                "Transfer labels from reference cells to query cells by a "
                                "k-nearest-neighbour vote in obsm <rep> (both must come from the "
                                "same model); writes labels.csv, adata.h5ad and, when the query "
                                "has the true labels, confusion.csv/png with accuracy and F1.",
                                argc, argv);
}
