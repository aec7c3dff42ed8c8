/* scalex project — project a query onto a trained reference (SCALEX's --projection). */
#include "cmd_pipeline.h"
#include "sx_cli.h"

SX_CMD(project)
{
    return sx_cli_pipeline_main(SX_JOB_PROJECT, "project",
                                "Project query data onto a trained reference: reindex to the "
                                "reference genes, encode, place on the reference UMAP (or "
                                "recompute it jointly), transfer --label when given.",
                                argc, argv);
}
