/* sx_plot — UMAP scatter, projection overlay and confusion heatmap with cairo. */
#include "sx_plot.h"
#include "sx_plot_internal.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sx_alloc.h"

/* scanpy plotting/palettes.py: default_20 (vega_20_scanpy) and default_28 (zeileis_28). */
static const char *const palette20[20] = {
    "#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc", "#8c564b", "#e377c2",
    "#b5bd61", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#ad494a", "#8c6d31"};
static const char *const palette28[28] = {
    "#023fa5", "#7d87b9", "#bec1d4", "#d6bcc0", "#bb7784", "#8e063b", "#4a6fe3",
    "#8595e1", "#b5bbe3", "#e6afb9", "#e07b91", "#d33f6a", "#11c638", "#8dd593",
    "#c6dec7", "#ead3c6", "#f0b98d", "#ef9708", "#0fcfc0", "#9cded6", "#d5eae7",
    "#f3e1eb", "#f6c4e1", "#f79cd4", "#7f7f7f", "#c7c7c7", "#1ce6ff", "#336600"};

#define NA_COLOR "#d3d3d3" /* scanpy's na_color / matplotlib lightgray */
#define FONT "DejaVu Sans"

const char *sx_plot_palette_hex(int n_categories, int i)
{
    if (i < 0) return NA_COLOR;
    if (n_categories <= 20) return palette20[i % 20];
    return palette28[i % 28];
}

static void hex_rgb(const char *hex, double rgb[3])
{
    unsigned r = 0x80, g = 0x80, b = 0x80;
    if (hex && hex[0] == '#' && strlen(hex) >= 7) sscanf(hex + 1, "%2x%2x%2x", &r, &g, &b);
    rgb[0] = r / 255.0;
    rgb[1] = g / 255.0;
    rgb[2] = b / 255.0;
}

void sx_plot_palette_rgb(int n_categories, int i, double rgb[3])
{
    hex_rgb(sx_plot_palette_hex(n_categories, i), rgb);
}

/* ---- surfaces ---- */

typedef enum { FMT_PNG, FMT_PDF, FMT_SVG } fig_fmt;

static int format_of(const char *path, fig_fmt *f, sx_status *st)
{
    const char *dot = strrchr(path, '.');
    if (dot && strcasecmp(dot, ".png") == 0) *f = FMT_PNG;
    else if (dot && strcasecmp(dot, ".pdf") == 0) *f = FMT_PDF;
    else if (dot && strcasecmp(dot, ".svg") == 0) *f = FMT_SVG;
    else
        return sx_status_set(st, SX_EINVAL,
                             "plot '%s': unknown figure type (use a .png, .pdf or .svg name)", path);
    return SX_OK;
}

typedef struct figure {
    fig_fmt fmt;
    char *tmp;
    cairo_surface_t *surf;
    cairo_t *cr;
} figure;

static int figure_open(figure *fg, const char *path, int w, int h, sx_status *st)
{
    memset(fg, 0, sizeof *fg);
    if (format_of(path, &fg->fmt, st) != SX_OK) return st->code;
    size_t len = strlen(path) + 8;
    fg->tmp = sx_malloc(len);
    if (!fg->tmp) return sx_status_set(st, SX_ENOMEM, "plot '%s': out of memory", path);
    /* keep the extension last: some viewers and cairo itself look at it */
    snprintf(fg->tmp, len, "%s.tmp", path);
    if (fg->fmt == FMT_PNG)
        fg->surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    else if (fg->fmt == FMT_PDF)
        fg->surf = cairo_pdf_surface_create(fg->tmp, w, h);
    else
        fg->surf = cairo_svg_surface_create(fg->tmp, w, h);
    if (cairo_surface_status(fg->surf) != CAIRO_STATUS_SUCCESS) {
        sx_status_set(st, SX_EIO, "plot '%s': cannot create the figure (%s); check that the folder "
                      "exists and is writable", path,
                      cairo_status_to_string(cairo_surface_status(fg->surf)));
        goto fail;
    }
    fg->cr = cairo_create(fg->surf);
    cairo_set_source_rgb(fg->cr, 1, 1, 1);
    cairo_paint(fg->cr);
    cairo_select_font_face(fg->cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return SX_OK;
fail:
    if (fg->surf) cairo_surface_destroy(fg->surf);
    fg->surf = NULL;
    sx_free(fg->tmp);
    fg->tmp = NULL;
    return st->code;
}

static int figure_close(figure *fg, const char *path, int ok, sx_status *st)
{
    int rc = SX_OK;
    if (fg->cr) {
        cairo_status_t cs = cairo_status(fg->cr);
        if (ok && cs != CAIRO_STATUS_SUCCESS)
            rc = sx_status_set(st, SX_EIO, "plot '%s': drawing failed (%s)", path,
                               cairo_status_to_string(cs));
        cairo_destroy(fg->cr);
    }
    if (fg->surf) {
        if (ok && rc == SX_OK && fg->fmt == FMT_PNG) {
            cairo_status_t cs = cairo_surface_write_to_png(fg->surf, fg->tmp);
            if (cs != CAIRO_STATUS_SUCCESS)
                rc = sx_status_set(st, SX_EIO, "plot '%s': cannot write the PNG (%s)", path,
                                   cairo_status_to_string(cs));
        }
        cairo_surface_finish(fg->surf);
        if (ok && rc == SX_OK && cairo_surface_status(fg->surf) != CAIRO_STATUS_SUCCESS)
            rc = sx_status_set(st, SX_EIO, "plot '%s': cannot write (%s)", path,
                               cairo_status_to_string(cairo_surface_status(fg->surf)));
        cairo_surface_destroy(fg->surf);
    }
    if (ok && rc == SX_OK) {
        if (rename(fg->tmp, path) != 0)
            rc = sx_status_set(st, SX_EIO, "plot '%s': cannot rename '%s' into place", path,
                               fg->tmp);
    }
    if (!ok || rc != SX_OK) remove(fg->tmp);
    sx_free(fg->tmp);
    memset(fg, 0, sizeof *fg);
    return rc;
}

/* Width of text at a font size, measured on a scratch context. */
static double text_width(cairo_t *cr, const char *s, double size)
{
    cairo_text_extents_t e;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, s ? s : "", &e);
    return e.x_advance;
}

void sx_plot_text(cairo_t *cr, double x, double y, const char *s, double size, int bold,
                  double align /* 0 left, 0.5 centre, 1 right */)
{
    if (!s || !*s) return;
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - align * e.x_advance, y);
    cairo_show_text(cr, s);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

/* ---- scatter ---- */

#define LEG_FONT 11.0
#define LEG_ROW 15.0

typedef struct panel_layout {
    double legend_w;  /* total legend width */
    int legend_cols;
    int legend_rows;  /* rows per column */
    int n_entries;
    int has_na;
} panel_layout;

static const char *cat_color(const sx_plot_panel *p, int c)
{
    if (c < 0) return NA_COLOR;
    if (p->colors && p->colors[c]) return p->colors[c];
    return sx_plot_palette_hex(p->n_categories, c);
}

int sx_plot_embedding(const char *path, const double *xy, int64_t n, const sx_plot_panel *panels,
                      int n_panels, const sx_plot_opts *opts, sx_status *st)
{
    figure fg = {0};
    panel_layout *lay = NULL;
    int ok = 0;
    if (!path || !xy || n <= 0 || !panels || n_panels <= 0)
        return sx_status_set(st, SX_EINVAL, "plot '%s': nothing to draw (%lld points, %d panels)",
                             path ? path : "(null)", (long long)n, n_panels);
    fig_fmt fmt;
    if (format_of(path, &fmt, st) != SX_OK) return st->code;
    for (int p = 0; p < n_panels; p++) {
        if (!panels[p].codes)
            return sx_status_set(st, SX_EINVAL, "plot '%s': panel %d has no category codes", path, p);
        for (int64_t i = 0; i < n; i++)
            if (panels[p].codes[i] < -1 || panels[p].codes[i] >= panels[p].n_categories)
                return sx_status_set(st, SX_EINVAL,
                                     "plot '%s': panel %d point %lld has category code %d outside "
                                     "[-1, %d)", path, p, (long long)i, panels[p].codes[i],
                                     panels[p].n_categories);
    }
    int S = opts && opts->panel_size > 0 ? opts->panel_size : 400;
    const char *xlabel = opts && opts->xlabel ? opts->xlabel : "UMAP1";
    const char *ylabel = opts && opts->ylabel ? opts->ylabel : "UMAP2";
    const char *title = opts ? opts->title : NULL;

    /* measure legends on a scratch surface */
    lay = sx_calloc((size_t)n_panels, sizeof *lay);
    if (!lay) return sx_status_set(st, SX_ENOMEM, "plot '%s': out of memory", path);
    {
        cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
        cairo_t *mc = cairo_create(scratch);
        cairo_select_font_face(mc, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
        for (int p = 0; p < n_panels; p++) {
            const sx_plot_panel *pn = &panels[p];
            double wmax = 0;
            int entries = 0;
            for (int c = 0; c < pn->n_categories; c++) {
                double w = text_width(mc, pn->categories ? pn->categories[c] : "", LEG_FONT);
                if (w > wmax) wmax = w;
                entries++;
            }
            for (int64_t i = 0; i < n; i++)
                if (pn->codes[i] < 0 && (!pn->highlight || pn->highlight[i])) {
                    lay[p].has_na = 1;
                    break;
                }
            if (lay[p].has_na) {
                entries++;
                double w = text_width(mc, "NA", LEG_FONT);
                if (w > wmax) wmax = w;
            }
            if (pn->highlight && pn->grey_label) {
                entries++;
                double w = text_width(mc, pn->grey_label, LEG_FONT);
                if (w > wmax) wmax = w;
            }
            if (wmax > 220) wmax = 220; /* long labels are clipped by the next panel's margin */
            int per_col = (int)(S / LEG_ROW);
            if (per_col < 1) per_col = 1;
            lay[p].n_entries = entries;
            lay[p].legend_cols = entries == 0 ? 0 : (entries + per_col - 1) / per_col;
            lay[p].legend_rows = entries < per_col ? entries : per_col;
            lay[p].legend_w = lay[p].legend_cols * (wmax + 26) + 10;
        }
        cairo_destroy(mc);
        cairo_surface_destroy(scratch);
    }

    const double left = 34, right_pad = 10, top = title ? 58 : 34, bottom = 30;
    double W = 0;
    for (int p = 0; p < n_panels; p++) W += left + S + lay[p].legend_w + right_pad;
    double H = top + S + bottom;
    if (figure_open(&fg, path, (int)ceil(W), (int)ceil(H), st) != SX_OK) goto fail;
    cairo_t *cr = fg.cr;

    /* data range (finite points) with a 3% margin */
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double x = xy[2 * i], y = xy[2 * i + 1];
        if (!isfinite(x) || !isfinite(y)) continue;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
    }
    if (!(x1 >= x0)) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (x1 - x0 <= 0) { x0 -= 0.5; x1 += 0.5; }
    if (y1 - y0 <= 0) { y0 -= 0.5; y1 += 0.5; }
    double px = 0.03 * (x1 - x0), py = 0.03 * (y1 - y0);
    x0 -= px; x1 += px; y0 -= py; y1 += py;

    /* scanpy: marker area 120000 / n points^2 on a ~4 inch (288 pt) axis */
    double diam = opts && opts->point_size > 0 ? opts->point_size
                                               : sqrt(120000.0 / (double)n) * S / 288.0;
    if (!(opts && opts->point_size > 0)) {
        if (diam < 1.0) diam = 1.0;
        if (diam > 10.0) diam = 10.0;
    }
    double r = diam / 2;

    if (title) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        sx_plot_text(cr, W / 2, 24, title, 16, 1, 0.5);
    }

    double ox = 0;
    for (int p = 0; p < n_panels; p++) {
        const sx_plot_panel *pn = &panels[p];
        double bx = ox + left, by = top;
        /* frame */
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, bx + 0.5, by + 0.5, S - 1, S - 1);
        cairo_stroke(cr);
        if (pn->title) sx_plot_text(cr, bx + S / 2.0, by - 9, pn->title, 13, 0, 0.5);
        sx_plot_text(cr, bx + 4, by + S + 18, xlabel, 11, 0, 0);
        cairo_save(cr);
        cairo_move_to(cr, bx - 10, by + S - 4);
        cairo_rotate(cr, -M_PI / 2);
        cairo_set_font_size(cr, 11);
        cairo_show_text(cr, ylabel);
        cairo_restore(cr);

        cairo_save(cr);
        cairo_rectangle(cr, bx + 1, by + 1, S - 2, S - 2);
        cairo_clip(cr);
        /* two passes: grey (non-highlighted) points underneath, then coloured ones */
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 0 && !pn->highlight) continue;
            int prev = -2;
            for (int64_t i = 0; i < n; i++) {
                double x = xy[2 * i], y = xy[2 * i + 1];
                if (!isfinite(x) || !isfinite(y)) continue;
                int grey = pn->highlight && !pn->highlight[i];
                if ((pass == 0) != grey) continue;
                int c = grey ? -1 : pn->codes[i];
                if (c != prev) {
                    double rgb[3];
                    hex_rgb(cat_color(pn, c), rgb);
                    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
                    prev = c;
                }
                double cx = bx + (x - x0) / (x1 - x0) * S;
                double cy = by + S - (y - y0) / (y1 - y0) * S;
                if (r < 0.8) {
                    cairo_rectangle(cr, cx - r, cy - r, 2 * r, 2 * r);
                } else {
                    cairo_new_sub_path(cr);
                    cairo_arc(cr, cx, cy, r, 0, 2 * M_PI);
                }
                cairo_fill(cr);
            }
        }
        cairo_restore(cr);

        /* legend */
        double lx = bx + S + 10, ly = by + 6;
        int k = 0;
        double colw = lay[p].legend_cols ? (lay[p].legend_w - 10) / lay[p].legend_cols : 0;
        for (int e = 0; e < lay[p].n_entries; e++) {
            const char *label;
            const char *col;
            if (e < pn->n_categories) {
                label = pn->categories ? pn->categories[e] : "";
                col = cat_color(pn, e);
            } else if (lay[p].has_na && e == pn->n_categories) {
                label = "NA";
                col = NA_COLOR;
            } else {
                label = pn->grey_label;
                col = NA_COLOR;
            }
            int cidx = k / lay[p].legend_rows, row = k % lay[p].legend_rows;
            double ex = lx + cidx * colw, ey = ly + row * LEG_ROW;
            double rgb[3];
            hex_rgb(col, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_new_sub_path(cr);
            cairo_arc(cr, ex + 5, ey + 5, 4.5, 0, 2 * M_PI);
            cairo_fill(cr);
            cairo_set_source_rgb(cr, 0, 0, 0);
            sx_plot_text(cr, ex + 14, ey + 9.5, label, LEG_FONT, 0, 0);
            k++;
        }
        ox += left + S + lay[p].legend_w + right_pad;
    }
    ok = 1;
fail:
    sx_free(lay);
    if (fg.surf) {
        if (figure_close(&fg, path, ok, st) != SX_OK) return st->code;
    }
    return ok ? SX_OK : st->code;
}

/* ---- confusion heatmap ---- */

int sx_plot_confusion(const char *path, const double *m, int n_rows, int n_cols,
                      const char *const *row_labels, const char *const *col_labels,
                      const char *row_title, const char *col_title, const char *title,
                      int row_normalize, sx_status *st)
{
    figure fg = {0};
    double *shade = NULL;
    int ok = 0;
    if (!path || !m || n_rows <= 0 || n_cols <= 0)
        return sx_status_set(st, SX_EINVAL, "plot '%s': empty confusion matrix (%d x %d)",
                             path ? path : "(null)", n_rows, n_cols);
    fig_fmt fmt;
    if (format_of(path, &fmt, st) != SX_OK) return st->code;
    shade = sx_mallocarray((size_t)n_rows * (size_t)n_cols, sizeof *shade);
    if (!shade) return sx_status_set(st, SX_ENOMEM, "plot '%s': out of memory", path);
    double vmax = 0;
    for (int i = 0; i < n_rows * n_cols; i++)
        if (m[i] > vmax) vmax = m[i];
    for (int i = 0; i < n_rows; i++) {
        double rs = 0;
        for (int j = 0; j < n_cols; j++) rs += m[(size_t)i * n_cols + j];
        for (int j = 0; j < n_cols; j++) {
            double v = m[(size_t)i * n_cols + j];
            double d = row_normalize ? rs : vmax;
            shade[(size_t)i * n_cols + j] = d > 0 && isfinite(v) ? v / d : 0;
        }
    }
    int big = n_rows > n_cols ? n_rows : n_cols;
    double cell = 440.0 / big;
    if (cell > 44) cell = 44;
    if (cell < 10) cell = 10;
    double fsz = cell < 20 ? 8 : 10;

    double rw = 0, cw = 0;
    {
        cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
        cairo_t *mc = cairo_create(scratch);
        cairo_select_font_face(mc, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
        for (int i = 0; i < n_rows; i++) {
            double w = text_width(mc, row_labels ? row_labels[i] : "", 11);
            if (w > rw) rw = w;
        }
        for (int j = 0; j < n_cols; j++) {
            double w = text_width(mc, col_labels ? col_labels[j] : "", 11);
            if (w > cw) cw = w;
        }
        cairo_destroy(mc);
        cairo_surface_destroy(scratch);
    }
    if (rw > 200) rw = 200;
    if (cw > 200) cw = 200;
    double left = rw + 36, top = title ? 40 : 14, bar_w = 14;
    double gw = cell * n_cols, gh = cell * n_rows;
    double W = left + gw + 20 + bar_w + 44, H = top + gh + cw + 36;
    if (title) {
        cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
        cairo_t *mc = cairo_create(scratch);
        double tw = text_width(mc, title, 14) + 20;
        cairo_destroy(mc);
        cairo_surface_destroy(scratch);
        if (tw > W) W = tw;
    }
    if (figure_open(&fg, path, (int)ceil(W), (int)ceil(H), st) != SX_OK) goto fail;
    cairo_t *cr = fg.cr;
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (title) sx_plot_text(cr, W / 2, 24, title, 14, 1, 0.5);
    /* white -> matplotlib "Blues" dark end (#08306b) */
    for (int i = 0; i < n_rows; i++) {
        for (int j = 0; j < n_cols; j++) {
            double s = shade[(size_t)i * n_cols + j];
            if (s < 0) s = 0;
            if (s > 1) s = 1;
            double rr = 1 + s * (0x08 / 255.0 - 1), gg = 1 + s * (0x30 / 255.0 - 1),
                   bb = 1 + s * (0x6b / 255.0 - 1);
            cairo_set_source_rgb(cr, rr, gg, bb);
            cairo_rectangle(cr, left + j * cell, top + i * cell, cell, cell);
            cairo_fill(cr);
            if (cell >= 18) {
                char buf[32];
                double v = m[(size_t)i * n_cols + j];
                if (v == floor(v) && fabs(v) < 1e9) snprintf(buf, sizeof buf, "%.0f", v);
                else snprintf(buf, sizeof buf, "%.2f", v);
                if (s > 0.5) cairo_set_source_rgb(cr, 1, 1, 1);
                else cairo_set_source_rgb(cr, 0, 0, 0);
                sx_plot_text(cr, left + (j + 0.5) * cell, top + (i + 0.5) * cell + fsz / 2.8, buf, fsz,
                          0, 0.5);
            }
        }
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, left + 0.5, top + 0.5, gw, gh);
    cairo_stroke(cr);
    for (int i = 0; i < n_rows; i++)
        sx_plot_text(cr, left - 4, top + (i + 0.5) * cell + 4, row_labels ? row_labels[i] : "", 11, 0, 1);
    for (int j = 0; j < n_cols; j++) {
        cairo_save(cr);
        cairo_move_to(cr, left + (j + 0.5) * cell + 4, top + gh + 4);
        cairo_rotate(cr, M_PI / 2);
        cairo_set_font_size(cr, 11);
        if (col_labels && col_labels[j]) cairo_show_text(cr, col_labels[j]);
        cairo_restore(cr);
    }
    if (col_title) sx_plot_text(cr, left + gw / 2, top + gh + cw + 26, col_title, 12, 0, 0.5);
    if (row_title) {
        cairo_save(cr);
        cairo_move_to(cr, 16, top + gh / 2);
        cairo_rotate(cr, -M_PI / 2);
        cairo_set_font_size(cr, 12);
        cairo_text_extents_t e;
        cairo_text_extents(cr, row_title, &e);
        cairo_rel_move_to(cr, -e.x_advance / 2, 0);
        cairo_show_text(cr, row_title);
        cairo_restore(cr);
    }
    /* colour bar */
    double cbx = left + gw + 20;
    for (int k = 0; k < 100; k++) {
        double s = 1 - k / 99.0;
        cairo_set_source_rgb(cr, 1 + s * (0x08 / 255.0 - 1), 1 + s * (0x30 / 255.0 - 1),
                             1 + s * (0x6b / 255.0 - 1));
        cairo_rectangle(cr, cbx, top + k * gh / 100.0, bar_w, gh / 100.0 + 0.5);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, cbx + 0.5, top + 0.5, bar_w, gh);
    cairo_stroke(cr);
    {
        char buf[32];
        if (row_normalize) snprintf(buf, sizeof buf, "1");
        else snprintf(buf, sizeof buf, "%.0f", vmax);
        sx_plot_text(cr, cbx + bar_w + 4, top + 9, buf, 9, 0, 0);
        sx_plot_text(cr, cbx + bar_w + 4, top + gh, "0", 9, 0, 0);
    }
    ok = 1;
fail:
    sx_free(shade);
    if (fg.surf) {
        if (figure_close(&fg, path, ok, st) != SX_OK) return st->code;
    }
    return ok ? SX_OK : st->code;
}
