/* sx_genematch — which query gene is which reference gene, said out loud.
 *
 * A projection puts the query on the reference's gene list. Names differ for ordinary
 * reasons (Ensembl ids vs symbols, mouse vs human case, orthologs), and a silent "0 genes
 * matched" is the commonest way a map goes wrong. Rules, applied in this order, each only
 * to the reference genes and query genes no earlier rule took:
 *   gene_table        an optional two-column table "query id <TAB> reference gene" (orthologs,
 *                     synonyms); the query id may be a var name or a value of an identifier
 *                     column
 *   var_names         the query's var names (made unique as anndata's var_names_make_unique:
 *                     the k-th repeat becomes name-k), exactly, then Ensembl ids without
 *                     their ".version"
 *   <column name>     every var column that holds identifiers (string/categorical; found by
 *                     content: mostly present, mostly distinct, not numbers; Ensembl-id-like
 *                     columns first when the reference uses Ensembl ids, symbol-like ones
 *                     first otherwise), values made unique the same way, exact then stem
 *   case_insensitive  var names then identifier columns compared ignoring ASCII case
 *                     (mouse Gcg -> human GCG)
 * A key that names two free query genes for one reference gene, or one query gene for two
 * reference genes, is ambiguous: listed in the report, never guessed (both stay unmatched
 * by that rule). */
#ifndef SX_GENEMATCH_H
#define SX_GENEMATCH_H

#include <stddef.h>
#include <stdint.h>

#include "sx_error.h"
#include "sx_frame.h"

/* ---- gene table: query id -> reference gene ---- */
typedef struct sx_gene_table sx_gene_table;

/* Parse text: one pair per line, the two fields separated by a tab (or, when a line has no
 * tab, by a comma); blank lines and lines starting with '#' skipped; a header line is
 * harmless (it names no gene). `what` names the source in messages (never a server path:
 * pass a file name). SX_EFORMAT for a line with one field. Caller frees. */
sx_gene_table *sx_gene_table_parse(const char *text, size_t len, const char *what,
                                   sx_status *st);
/* Read a file (SX_ENOTFOUND when absent, SX_EIO when unreadable). Messages name only the
 * file's base name. Caller frees. */
sx_gene_table *sx_gene_table_read(const char *path, sx_status *st);
int64_t sx_gene_table_size(const sx_gene_table *t);
/* The gene table of a projection: the file `path` when given (it must exist), else
 * "genes.tsv" in the reference's folder (`ref`: that folder or a file in it) when there is
 * one; *out = NULL when neither (SX_OK). Caller frees *out. */
int sx_gene_table_find(const char *path, const char *ref, sx_gene_table **out, sx_status *st);
void sx_gene_table_free(sx_gene_table *t);

/* ---- the match ---- */
#define SX_GENEMATCH_LISTED 20 /* ambiguous matches listed by name (all are counted) */

typedef struct sx_genematch_report {
    int64_t n_ref;       /* reference genes */
    int64_t n_query;     /* query genes (var rows) */
    int64_t n_matched;   /* reference genes given a query gene */
    int n_rules;         /* rules tried, in the order applied */
    char **rule;         /* "gene_table", "var_names", column names, "case_insensitive" */
    int64_t *rule_n;     /* reference genes each rule matched */
    int64_t n_ambiguous; /* ambiguous keys seen (each left unmatched by its rule) */
    int n_listed;
    char **ambiguous;    /* first SX_GENEMATCH_LISTED, e.g. "GCG: query Gcg, gcg (case_insensitive)" */
} sx_genematch_report;

/* Zeroes and frees what the report owns (NULL is fine). */
void sx_genematch_report_free(sx_genematch_report *r);
/* Matched count of a rule by name (0 when it was not tried). */
int64_t sx_genematch_rule_count(const sx_genematch_report *r, const char *rule);

/* Match: src[k] = the query row (of var) of reference gene k, or -1; no query row is given
 * to two reference genes. table may be NULL. rep (may be NULL) is filled (free it with
 * sx_genematch_report_free). Never fails on a low overlap (the caller decides); SX_ENOMEM
 * only. */
int sx_genematch_run(const sx_frame *var, const char *const *ref, int64_t n_ref,
                     const sx_gene_table *table, int64_t *src, sx_genematch_report *rep,
                     sx_status *st);

/* Is s an Ensembl id (ENS, optional species letters, digits, optional .version)? */
int sx_genematch_is_ensembl(const char *s);

#endif
