/* sx_plot_internal — drawing helpers shared by the module's figures (sx_plot.c's UMAP and
 * confusion figures, sx_plot_qc.c's QC panels). Not part of the module's public API. */
#ifndef SX_PLOT_INTERNAL_H
#define SX_PLOT_INTERNAL_H

#include <cairo.h>

/* Text s at (x, y) on the baseline, in the module's font at size (bold when asked), aligned
 * by align: 0 left, 0.5 centre, 1 right. NULL or "" draws nothing. */
void sx_plot_text(cairo_t *cr, double x, double y, const char *s, double size, int bold,
                  double align);

#endif
