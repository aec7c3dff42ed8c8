/* HDF5 helpers: h5py's boolean enums, vlen and fixed strings, attributes, and errors on
 * files that are not HDF5. Files are built with raw HDF5 calls the way h5py writes them. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "sx_alloc.h"
#include "sx_h5.h"
#include "sx_test.h"

static hid_t bool_enum(void)
{
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t f = 0, tr = 1;
    H5Tenum_insert(t, "FALSE", &f);
    H5Tenum_insert(t, "TRUE", &tr);
    return t;
}

START_TEST(enum_strings_attrs)
{
    char path[600];
    snprintf(path, sizeof path, "%s/t.h5", sx_test_tmpdir());
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t et = bool_enum();
    int8_t vals[5] = {1, 0, 1, 1, 0};
    hsize_t n5 = 5;
    hid_t sp = H5Screate_simple(1, &n5, NULL);
    hid_t d = H5Dcreate2(f, "flags", et, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, et, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals);
    hid_t ssp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(d, "ordered", et, ssp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, et, &vals[0]);
    H5Aclose(a);
    H5Dclose(d);
    /* fixed-length, space padded strings */
    hid_t ft = H5Tcopy(H5T_C_S1);
    H5Tset_size(ft, 4);
    H5Tset_strpad(ft, H5T_STR_SPACEPAD);
    hsize_t n2 = 2;
    hid_t sp2 = H5Screate_simple(1, &n2, NULL);
    d = H5Dcreate2(f, "names", ft, sp2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, "ab  cdef");
    H5Dclose(d);
    sx_status st;
    const char *vs[3] = {"x", "yy", NULL};
    ck_assert_int_eq(sx_h5_write_strings(f, "vlen", vs, 3, 4, &st), SX_OK);
    ck_assert_int_eq(sx_h5_set_attr_string(f, "encoding-type", "anndata", &st), SX_OK);
    H5Sclose(sp);
    H5Sclose(sp2);
    H5Sclose(ssp);
    H5Tclose(ft);
    H5Tclose(et);
    H5Fclose(f);

    f = sx_h5_open_ro(path, &st);
    ck_assert_int_ge(f, 0);
    int64_t *iv, n;
    ck_assert_int_eq(sx_h5_read_i64(f, "flags", &iv, &n, &st), SX_OK);
    ck_assert_int_eq(n, 5);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(iv[i], vals[i]);
    sx_free(iv);
    double *dv;
    ck_assert_int_eq(sx_h5_read_f64(f, "flags", &dv, &n, &st), SX_OK);
    ck_assert_double_eq(dv[2], 1.0);
    sx_free(dv);
    ck_assert_int_eq(sx_h5_attr_i64(f, "flags", "ordered", &iv, &n, &st), SX_OK);
    ck_assert_int_eq(iv[0], 1);
    sx_free(iv);
    char **s;
    ck_assert_int_eq(sx_h5_read_strings(f, "names", &s, &n, &st), SX_OK);
    ck_assert_str_eq(s[0], "ab");
    ck_assert_str_eq(s[1], "cdef");
    sx_h5_free_strings(s, n);
    ck_assert_int_eq(sx_h5_read_strings(f, "vlen", &s, &n, &st), SX_OK);
    ck_assert_str_eq(s[1], "yy");
    ck_assert_str_eq(s[2], "");
    sx_h5_free_strings(s, n);
    char *enc;
    ck_assert_int_eq(sx_h5_attr_string(f, ".", "encoding-type", &enc, &st), SX_OK);
    ck_assert_str_eq(enc, "anndata");
    sx_free(enc);
    ck_assert_int_eq(sx_h5_read_i64(f, "missing", &iv, &n, &st), SX_ENOTFOUND);
    ck_assert_int_eq(sx_h5_read_f64(f, "names", &dv, &n, &st), SX_EFORMAT);
    H5Fclose(f);

    /* not an HDF5 file */
    FILE *fp = fopen(path, "w");
    fputs("not hdf5", fp);
    fclose(fp);
    ck_assert_int_lt(sx_h5_open_ro(path, &st), 0);
    ck_assert_int_eq(st.code, SX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(st.msg, "not an HDF5 file"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5");
    TCase *tc = tcase_create("h5");
    tcase_add_test(tc, enum_strings_attrs);
    suite_add_tcase(s, tc);
    return sx_test_run(s);
}
