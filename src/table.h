/*
 * table - operator output: aligned text tables for people, JSON for scripts
 * (written by jansson).  Cells are text; a column declared TABLE_INTEGER is
 * a JSON number, and an absent cell (NULL) is "-" in a table and null in
 * JSON.  Cell text may be attacker-influenced (account names): control
 * characters are shown escaped in tables and properly escaped in JSON, so
 * a crafted name cannot forge a row or a field; text that is not UTF-8 is
 * printed in JSON with U+FFFD for each byte outside ASCII, so the output
 * is always valid JSON.
 *
 * Memory: the table owns copies of every cell; headers and types are the
 * caller's and must outlive the table.
 */
#ifndef MAILJAIL_TABLE_H
#define MAILJAIL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum table_type {
	TABLE_TEXT,                /* a JSON string */
	TABLE_INTEGER,             /* a JSON number: the cell is a decimal integer */
};

struct table {
	size_t ncols;
	const char *const *headers;
	const enum table_type *types;   /* NULL: every column TABLE_TEXT */
	char **cells;              /* nrows * ncols */
	size_t nrows, cap;
};

void table_init(struct table *t, const char *const *headers, size_t ncols);
/* Declare the columns' types (ncols of them) before the first row. */
void table_set_types(struct table *t, const enum table_type *types);
/* Append a row of ncols strings (NULL shows as "-" / null).  0, or -1 when
 * out of memory or when a TABLE_INTEGER cell is not a decimal integer. */
int table_add(struct table *t, const char *const *row);
void table_print(const struct table *t, FILE *fp);
/* A JSON array of objects keyed by the headers, one object per line.
 * 0, or -1 when out of memory or writing failed. */
int table_print_json(const struct table *t, FILE *fp);
void table_free(struct table *t);

#endif
