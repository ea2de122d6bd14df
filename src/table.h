/*
 * table - operator output: aligned text tables for people, JSON for scripts.
 * Cell text may be attacker-influenced (account names): control characters
 * are shown escaped in tables and properly escaped in JSON, so a crafted
 * name cannot forge a row or a field.
 *
 * Memory: the table owns copies of every cell.
 */
#ifndef MAILJAIL_TABLE_H
#define MAILJAIL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct table {
	size_t ncols;
	const char *const *headers;
	char **cells;              /* nrows * ncols */
	size_t nrows, cap;
};

void table_init(struct table *t, const char *const *headers, size_t ncols);
/* Append a row of ncols strings (NULL shows as "-" / null). 0 or -1. */
int table_add(struct table *t, const char *const *row);
void table_print(const struct table *t, FILE *fp);
/* JSON array of objects keyed by the headers. */
void table_print_json(const struct table *t, FILE *fp);
void table_free(struct table *t);

#endif
