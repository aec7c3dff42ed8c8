/* sx_plot_qc — qc.png: horizontal bars (genes per rule, cells per label) and a histogram. */
#include "sx_plot_qc.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_plot.h"
#include "sx_plot_internal.h"

#define PANEL_W 420
#define PANEL_H 320
#define MAX_BARS 20 /* labels beyond this are summed into "other" */
#define HIST_BINS 20

/* n horizontal bars with their names left and values right, in the box at (x0, y0) */
static void bars(cairo_t *cr, double x0, double y0, const char *title, int n,
                 const char *const *names, const double *v)
{
    sx_plot_text(cr, x0 + PANEL_W / 2.0, y0 + 20, title, 13, 1, 0.5);
    double max = 0;
    for (int i = 0; i < n; i++) max = v[i] > max ? v[i] : max;
    double top = y0 + 36, row = (PANEL_H - 50.0) / (n > 8 ? n : 8);
    double bx = x0 + 140, bw = PANEL_W - 200.0;
    for (int i = 0; i < n; i++) {
        double y = top + i * row, w = max > 0 ? bw * v[i] / max : 0;
        double rgb[3];
        sx_plot_palette_rgb(n, i, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, bx, y + row * 0.15, w, row * 0.7);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        char name[24], num[32];
        snprintf(name, sizeof name, "%s", names[i]);
        snprintf(num, sizeof num, "%.0f", v[i]);
        double fs = row * 0.6 < 11 ? row * 0.6 : 11;
        sx_plot_text(cr, bx - 6, y + row * 0.7, name, fs, 0, 1);
        sx_plot_text(cr, bx + w + 4, y + row * 0.7, num, fs, 0, 0);
    }
}

/* histogram of values in [0, 1] */
static void histogram(cairo_t *cr, double x0, double y0, const double *v, int64_t n)
{
    int64_t h[HIST_BINS] = {0}, max = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        int b = (int)(v[i] * HIST_BINS);
        h[b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b]++;
    }
    for (int b = 0; b < HIST_BINS; b++) max = h[b] > max ? h[b] : max;
    sx_plot_text(cr, x0 + PANEL_W / 2.0, y0 + 20, "mapping score (query cells)", 13, 1, 0.5);
    double left = x0 + 50, bottom = y0 + PANEL_H - 40, w = PANEL_W - 80.0, hh = PANEL_H - 80.0;
    for (int b = 0; b < HIST_BINS && max > 0; b++) {
        double bh = hh * (double)h[b] / (double)max;
        cairo_set_source_rgb(cr, 0.12, 0.47, 0.71);
        cairo_rectangle(cr, left + b * w / HIST_BINS + 1, bottom - bh, w / HIST_BINS - 2, bh);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, left, bottom + 0.5);
    cairo_line_to(cr, left + w, bottom + 0.5);
    cairo_stroke(cr);
    const char *ticks[] = {"0", "0.25", "0.5", "0.75", "1"};
    for (int t = 0; t < 5; t++) sx_plot_text(cr, left + w * t / 4, bottom + 16, ticks[t], 10, 0, 0.5);
    char m[32];
    snprintf(m, sizeof m, "max %lld cells", (long long)max);
    sx_plot_text(cr, left, y0 + 36, m, 10, 0, 0);
}

/* the surface into path via path.tmp */
static int write_png(cairo_surface_t *s, const char *path, sx_status *st)
{
    size_t len = strlen(path) + 8;
    char *tmp = sx_malloc(len);
    if (!tmp) return sx_status_set(st, SX_ENOMEM, "out of memory");
    snprintf(tmp, len, "%s.tmp", path);
    int rc = SX_OK;
    if (cairo_surface_write_to_png(s, tmp) != CAIRO_STATUS_SUCCESS || rename(tmp, path) != 0) {
        remove(tmp);
        rc = sx_status_set(st, SX_EIO, "cannot write the QC figure qc.png; check that the output "
                           "folder is writable");
    }
    sx_free(tmp);
    return rc;
}

int sx_plot_qc(const char *path, const sx_plot_qc_data *d, sx_status *st)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strcmp(dot, ".png") != 0)
        return sx_status_set(st, SX_EINVAL, "the QC figure is a .png");
    int panels = (d->n_rules > 0) + (d->n_score > 0) + (d->n_classes > 0);
    if (!panels) return sx_status_set(st, SX_EINVAL, "the QC figure has nothing to draw");
    int top = d->title ? 30 : 0;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, PANEL_W * panels,
                                                    PANEL_H + top);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (d->title) sx_plot_text(cr, PANEL_W * panels / 2.0, 21, d->title, 15, 1, 0.5);
    double x = 0;
    const char *names[MAX_BARS + 2];
    double v[MAX_BARS + 2];
    if (d->n_rules > 0) {
        int n = 0;
        for (int i = 0; i < d->n_rules && n < MAX_BARS; i++, n++) {
            names[n] = d->rule[i];
            v[n] = (double)d->rule_n[i];
        }
        names[n] = "not found";
        v[n++] = (double)d->n_missing;
        bars(cr, x, top, "reference genes matched, by rule", n, names, v);
        x += PANEL_W;
    }
    if (d->n_score > 0) {
        histogram(cr, x, top, d->score, d->n_score);
        x += PANEL_W;
    }
    if (d->n_classes > 0) {
        int n = 0;
        double other = 0;
        for (int i = 0; i < d->n_classes; i++) {
            if (n < MAX_BARS) {
                names[n] = d->classes[i];
                v[n++] = (double)d->class_n[i];
            } else {
                other += (double)d->class_n[i];
            }
        }
        if (other > 0) {
            names[n] = "other";
            v[n++] = other;
        }
        char t[128];
        snprintf(t, sizeof t, "query cells per %s", d->label ? d->label : "label");
        bars(cr, x, top, t, n, names, v);
    }
    int rc = cairo_status(cr) == CAIRO_STATUS_SUCCESS
                 ? SX_OK
                 : sx_status_set(st, SX_EIO, "drawing the QC figure failed");
    cairo_destroy(cr);
    if (rc == SX_OK) rc = write_png(s, path, st);
    cairo_surface_destroy(s);
    return rc;
}
