/* sx_plot: figures are valid PNG/PDF/SVG files, not blank, coloured with scanpy's palette
 * where the data are, and deterministic. */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sx_plot.h"
#include "sx_test.h"

static long file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static int read_head(const char *p, unsigned char *buf, size_t n)
{
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    return got == n;
}

/* Pixels whose colour is within tol (per channel, 0..255) of hex; region [x0,x1)x[y0,y1)
 * or the whole image when x1 <= 0. */
static long count_color(cairo_surface_t *s, const char *hex, int tol, int x0, int y0, int x1, int y1)
{
    unsigned r, g, b;
    sscanf(hex + 1, "%2x%2x%2x", &r, &g, &b);
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    if (x1 <= 0) { x0 = 0; y0 = 0; x1 = w; y1 = h; }
    long c = 0;
    for (int y = y0; y < y1 && y < h; y++)
        for (int x = x0; x < x1 && x < w; x++) {
            uint32_t px = *(const uint32_t *)(d + (size_t)y * stride + 4 * (size_t)x);
            int pr = (px >> 16) & 255, pg = (px >> 8) & 255, pb = px & 255;
            if (abs(pr - (int)r) <= tol && abs(pg - (int)g) <= tol && abs(pb - (int)b) <= tol) c++;
        }
    return c;
}

static long count_non_white(cairo_surface_t *s)
{
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    long total = (long)w * h;
    return total - count_color(s, "#ffffff", 0, 0, 0, 0, 0);
}

/* three blobs at (0,0), (10,0), (5,10), 100 points each, category = blob */
static void blobs(double *xy, int32_t *codes)
{
    unsigned seed = 7;
    for (int i = 0; i < 300; i++) {
        int c = i % 3;
        double cx = c == 0 ? 0 : c == 1 ? 10 : 5, cy = c == 2 ? 10 : 0;
        seed = seed * 1103515245u + 12345u;
        double u = ((seed >> 8) & 0xffff) / 65536.0 - 0.5;
        seed = seed * 1103515245u + 12345u;
        double v = ((seed >> 8) & 0xffff) / 65536.0 - 0.5;
        xy[2 * i] = cx + u;
        xy[2 * i + 1] = cy + v;
        codes[i] = c;
    }
}

START_TEST(palette_is_scanpy_default)
{
    /* scanpy plotting/palettes.py default_20 (vega_20_scanpy) and default_28 (zeileis_28) */
    ck_assert_str_eq(sx_plot_palette_hex(3, 0), "#1f77b4");
    ck_assert_str_eq(sx_plot_palette_hex(3, 2), "#279e68");
    ck_assert_str_eq(sx_plot_palette_hex(9, 7), "#b5bd61");
    ck_assert_str_eq(sx_plot_palette_hex(20, 19), "#8c6d31");
    ck_assert_str_eq(sx_plot_palette_hex(25, 0), "#023fa5");
    ck_assert_str_eq(sx_plot_palette_hex(28, 27), "#336600");
    double rgb[3];
    sx_plot_palette_rgb(3, 1, rgb); /* #ff7f0e */
    ck_assert(fabs(rgb[0] - 1.0) < 1e-9 && fabs(rgb[1] - 127 / 255.0) < 1e-9);
}
END_TEST

START_TEST(umap_png_colours_where_the_data_are)
{
    const char *dir = sx_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/umap.png", dir);
    double xy[600];
    int32_t codes[300];
    blobs(xy, codes);
    const char *cats[3] = {"alpha", "beta", "gamma"};
    sx_plot_panel pn = {.title = "cell_type", .codes = codes, .categories = cats, .n_categories = 3};
    sx_plot_opts o = {.panel_size = 300, .title = "test"};
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(sx_plot_embedding(path, xy, 300, &pn, 1, &o, &st), SX_OK);
    unsigned char head[8];
    ck_assert(read_head(path, head, 8));
    ck_assert(memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    ck_assert_int_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    ck_assert_int_ge(cairo_image_surface_get_width(s), 300);
    ck_assert_int_ge(cairo_image_surface_get_height(s), 300);
    ck_assert_int_gt(count_non_white(s), 3000);
    /* the plot box starts at x=34, y=58 (title) and is 300 px; blob 0 is bottom-left,
     * blob 1 bottom-right, blob 2 top-middle */
    long c0_bl = count_color(s, "#1f77b4", 2, 34, 58 + 150, 34 + 100, 58 + 300);
    long c0_tr = count_color(s, "#1f77b4", 2, 34 + 150, 58, 34 + 300, 58 + 150);
    long c1_br = count_color(s, "#ff7f0e", 2, 34 + 200, 58 + 150, 34 + 300, 58 + 300);
    long c2_top = count_color(s, "#279e68", 2, 34 + 100, 58, 34 + 200, 58 + 100);
    ck_assert_int_gt(c0_bl, 100);
    ck_assert_int_eq(c0_tr, 0);
    ck_assert_int_gt(c1_br, 100);
    ck_assert_int_gt(c2_top, 100);
    cairo_surface_destroy(s);

    /* deterministic: a second rendering is byte-identical */
    char path2[600];
    snprintf(path2, sizeof path2, "%s/umap2.png", dir);
    ck_assert_int_eq(sx_plot_embedding(path2, xy, 300, &pn, 1, &o, &st), SX_OK);
    long n1 = file_size(path), n2 = file_size(path2);
    ck_assert_int_eq(n1, n2);
    FILE *f1 = fopen(path, "rb"), *f2 = fopen(path2, "rb");
    int same = 1;
    for (long i = 0; i < n1; i++)
        if (fgetc(f1) != fgetc(f2)) { same = 0; break; }
    fclose(f1);
    fclose(f2);
    ck_assert(same);
}
END_TEST

START_TEST(umap_pdf_svg_and_two_panels)
{
    const char *dir = sx_test_tmpdir();
    char pdf[600], svg[600];
    snprintf(pdf, sizeof pdf, "%s/umap.pdf", dir);
    snprintf(svg, sizeof svg, "%s/umap.svg", dir);
    double xy[600];
    int32_t codes[300], batch[300];
    blobs(xy, codes);
    for (int i = 0; i < 300; i++) batch[i] = i < 150 ? 0 : (i < 290 ? 1 : -1);
    const char *cats[3] = {"alpha", "beta", "gamma"};
    const char *bats[2] = {"b1", "b2"};
    sx_plot_panel pn[2] = {
        {.title = "batch", .codes = batch, .categories = bats, .n_categories = 2},
        {.title = "cell_type", .codes = codes, .categories = cats, .n_categories = 3}};
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(sx_plot_embedding(pdf, xy, 300, pn, 2, NULL, &st), SX_OK);
    unsigned char head[5];
    ck_assert(read_head(pdf, head, 5));
    ck_assert(memcmp(head, "%PDF-", 5) == 0);
    ck_assert_int_gt(file_size(pdf), 3000);
    ck_assert_int_eq(sx_plot_embedding(svg, xy, 300, pn, 2, NULL, &st), SX_OK);
    ck_assert(read_head(svg, head, 5));
    ck_assert(memcmp(head, "<?xml", 5) == 0);
    /* no temporary file left behind */
    char tmp[620];
    snprintf(tmp, sizeof tmp, "%s.tmp", pdf);
    ck_assert_int_eq(file_size(tmp), -1);
}
END_TEST

START_TEST(overlay_reference_grey_query_coloured)
{
    const char *dir = sx_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/proj.png", dir);
    double xy[600];
    int32_t codes[300];
    uint8_t hl[300];
    blobs(xy, codes);
    /* blobs 0 and 1 are the reference (grey), blob 2 the query coloured by category 1 */
    for (int i = 0; i < 300; i++) {
        hl[i] = codes[i] == 2;
        if (codes[i] == 2) codes[i] = 1;
    }
    const char *cats[2] = {"x", "y"};
    sx_plot_panel pn = {.title = "projection", .codes = codes, .categories = cats,
                        .n_categories = 2, .highlight = hl, .grey_label = "reference"};
    sx_plot_opts o = {.panel_size = 300};
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(sx_plot_embedding(path, xy, 300, &pn, 1, &o, &st), SX_OK);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    ck_assert_int_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    /* plot box at x=34, y=34 */
    ck_assert_int_gt(count_color(s, "#d3d3d3", 2, 34, 34 + 150, 34 + 300, 34 + 300), 200);
    ck_assert_int_gt(count_color(s, "#ff7f0e", 2, 34 + 100, 34, 34 + 200, 34 + 100), 100);
    /* the reference blobs are not coloured */
    ck_assert_int_eq(count_color(s, "#ff7f0e", 2, 34, 34 + 150, 34 + 300, 34 + 300), 0);
    cairo_surface_destroy(s);
}
END_TEST

START_TEST(confusion_heatmap)
{
    const char *dir = sx_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/confusion.png", dir);
    double m[9] = {50, 0, 0, 0, 40, 10, 0, 0, 30};
    const char *lab[3] = {"alpha", "beta", "gamma"};
    sx_status st;
    sx_status_clear(&st);
    ck_assert_int_eq(sx_plot_confusion(path, m, 3, 3, lab, lab, "true", "predicted",
                                       "label transfer", 1, &st), SX_OK);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    ck_assert_int_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    /* full-row cells are the darkest blue (#08306b) */
    ck_assert_int_gt(count_color(s, "#08306b", 2, 0, 0, 0, 0), 3 * 44 * 20);
    ck_assert_int_gt(count_non_white(s), 5000);
    cairo_surface_destroy(s);
    char pdf[600];
    snprintf(pdf, sizeof pdf, "%s/confusion.pdf", dir);
    ck_assert_int_eq(sx_plot_confusion(pdf, m, 3, 3, lab, lab, NULL, NULL, NULL, 0, &st), SX_OK);
    ck_assert_int_gt(file_size(pdf), 1000);
}
END_TEST

START_TEST(bad_inputs_are_errors)
{
    const char *dir = sx_test_tmpdir();
    char path[600];
    double xy[4] = {0, 0, 1, 1};
    int32_t codes[2] = {0, 5};
    const char *cats[1] = {"a"};
    sx_plot_panel pn = {.codes = codes, .categories = cats, .n_categories = 1};
    sx_status st;
    sx_status_clear(&st);
    snprintf(path, sizeof path, "%s/x.png", dir);
    ck_assert_int_eq(sx_plot_embedding(path, xy, 2, &pn, 1, NULL, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, "category code"));
    codes[1] = 0;
    snprintf(path, sizeof path, "%s/x.bmp", dir);
    ck_assert_int_eq(sx_plot_embedding(path, xy, 2, &pn, 1, NULL, &st), SX_EINVAL);
    ck_assert_ptr_nonnull(strstr(st.msg, ".png"));
    snprintf(path, sizeof path, "%s/no/such/dir/x.pdf", dir);
    ck_assert_int_eq(sx_plot_embedding(path, xy, 2, &pn, 1, NULL, &st), SX_EIO);
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", dir);
    ck_assert_int_eq(sx_plot_embedding(path, xy, 2, &pn, 1, NULL, &st), SX_EIO);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_add_test(tc, palette_is_scanpy_default);
    tcase_add_test(tc, umap_png_colours_where_the_data_are);
    tcase_add_test(tc, umap_pdf_svg_and_two_panels);
    tcase_add_test(tc, overlay_reference_grey_query_coloured);
    tcase_add_test(tc, confusion_heatmap);
    tcase_add_test(tc, bad_inputs_are_errors);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
