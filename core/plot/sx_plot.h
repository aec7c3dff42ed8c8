/* sx_plot — the figures SCALEX writes: UMAP scatter plots coloured by a categorical
 * (scanpy's `sc.pl.umap(color=[...])`), the projection overlay (SCALEX's `embedding`: the
 * reference in grey underneath, the query coloured on top) and a confusion-matrix heatmap
 * for label transfer.
 *
 * Output format follows the file name: .png (raster), .pdf or .svg (vector). Files are
 * written to "<path>.tmp" and renamed into place so a crash never leaves a figure that
 * looks whole. Drawing is deterministic: points in input order, colours from scanpy's
 * default palettes (default_20 up to 20 categories, default_28 up to 28, then default_28
 * repeated), so two runs on the same data give byte-identical PNGs.
 */
#ifndef SX_PLOT_H
#define SX_PLOT_H

#include <stdint.h>

#include "sx_error.h"

/* Colour of category i of n as "#rrggbb" (static storage), the palette scanpy picks for a
 * categorical with n categories (plotting/palettes.py: default_20 / default_28). */
const char *sx_plot_palette_hex(int n_categories, int i);
/* Same colour as r, g, b in [0, 1]. */
void sx_plot_palette_rgb(int n_categories, int i, double rgb[3]);

/* One panel of a scatter figure: the same coordinates coloured by one categorical. */
typedef struct sx_plot_panel {
    const char *title;               /* panel title, e.g. "batch" (NULL = none) */
    const int32_t *codes;            /* n codes into categories; -1 = missing ("NA", light grey) */
    const char *const *categories;   /* category labels, in legend order */
    int n_categories;
    const char *const *colors;       /* optional "#rrggbb" per category (NULL = palette) */
    /* Overlay (projection): when highlight is set, points with highlight[i] == 0 are drawn
     * first in grey and without category colour (the reference), then the highlighted
     * points in their category colours (the query). grey_label names the grey points in
     * the legend (NULL = no legend entry). */
    const uint8_t *highlight;
    const char *grey_label;
} sx_plot_panel;

typedef struct sx_plot_opts {
    int panel_size;      /* side of the square plotting area in pixels/points (0 = 400) */
    double point_size;   /* point diameter in pixels (0 = scanpy's rule: sqrt(120000 / n)
                            points, scaled to the panel and clamped to [1, 10] px) */
    const char *title;   /* figure title above all panels (NULL = none) */
    const char *xlabel;  /* axis names (NULL = "UMAP1" / "UMAP2") */
    const char *ylabel;
} sx_plot_opts;

/* Scatter of xy (n x 2, row-major) with one panel per categorical, side by side.
 * opts may be NULL. Errors: SX_EINVAL (no points, bad codes, unknown extension),
 * SX_EIO (cannot write). */
int sx_plot_embedding(const char *path, const double *xy, int64_t n, const sx_plot_panel *panels,
                      int n_panels, const sx_plot_opts *opts, sx_status *st);

/* Confusion-matrix heatmap: m is n_rows x n_cols row-major (e.g. rows = true labels,
 * columns = predicted labels). Cells are shaded white -> blue by value / (row sum) when
 * row_normalize is set (each row sums to 1), else by value / max; the raw value is printed
 * in cells large enough to hold it. Labels along both axes; title optional. */
int sx_plot_confusion(const char *path, const double *m, int n_rows, int n_cols,
                      const char *const *row_labels, const char *const *col_labels,
                      const char *row_title, const char *col_title, const char *title,
                      int row_normalize, sx_status *st);

#endif
