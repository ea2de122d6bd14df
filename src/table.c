/*
 * table - aligned tables and JSON (jansson).  See table.h.
 */
#include "table.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"

void
table_init(struct table *t, const char *const *headers, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->headers = headers;
	t->ncols = ncols;
}

void
table_set_types(struct table *t, const enum table_type *types)
{
	t->types = types;
}

/* parse_integer - a whole cell of decimal digits, maybe signed, that fits */
static bool
parse_integer(const char *s, long long *v)
{
	char *end;

	if (!(*s == '-' || (*s >= '0' && *s <= '9')))
		return false;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0';
}

static bool
is_integer(const struct table *t, size_t col)
{
	return t->types != NULL && t->types[col] == TABLE_INTEGER;
}

/* display_dup - a copy safe to print: control bytes become \xNN */
static char *
display_dup(const char *s)
{
	size_t n = 0;
	char *out, *p;

	if (s == NULL)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		n += (*c < 0x20 || *c == 0x7f) ? 4 : 1;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	p = out;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c < 0x20 || *c == 0x7f)
			p += sprintf(p, "\\x%02x", *c);
		else
			*p++ = (char)*c;
	}
	*p = '\0';
	return out;
}

int
table_add(struct table *t, const char *const *row)
{
	long long v;

	for (size_t i = 0; i < t->ncols; i++)
		if (row[i] != NULL && is_integer(t, i) && !parse_integer(row[i], &v))
			return -1;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
		if (c == NULL)
			return -1;
		t->cells = c;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char **cell = &t->cells[t->nrows * t->ncols + i];
		*cell = NULL;
		if (row[i] && (*cell = strdup(row[i])) == NULL) {
			while (i-- > 0)
				free(t->cells[t->nrows * t->ncols + i]);
			return -1;
		}
	}
	t->nrows++;
	return 0;
}

/* print_cell - padded to width, the last one of a row unpadded */
static void
print_cell(FILE *fp, const char *v, size_t width, bool last)
{
	if (last)
		fprintf(fp, "%s\n", v);
	else
		fprintf(fp, "%-*s  ", (int)width, v);
}

void
table_print(const struct table *t, FILE *fp)
{
	size_t *w = calloc(t->ncols, sizeof(*w));
	char **shown = calloc(t->nrows * t->ncols + 1, sizeof(*shown));

	if (w == NULL || shown == NULL)
		goto out;
	for (size_t c = 0; c < t->ncols; c++)
		w[c] = strlen(t->headers[c]);
	for (size_t i = 0; i < t->nrows * t->ncols; i++) {
		const char *v = t->cells[i];
		shown[i] = display_dup(v ? v : "-");
		if (shown[i] && strlen(shown[i]) > w[i % t->ncols])
			w[i % t->ncols] = strlen(shown[i]);
	}
	for (size_t c = 0; c < t->ncols; c++)
		print_cell(fp, t->headers[c], w[c], c + 1 == t->ncols);
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = shown[r * t->ncols + c];
			print_cell(fp, v ? v : "?", w[c], c + 1 == t->ncols);
		}
	}
out:
	if (shown)
		for (size_t i = 0; i < t->nrows * t->ncols; i++)
			free(shown[i]);
	free(shown);
	free(w);
}

/* cell_value - null, a number or a string, by the column's type */
static json_t *
cell_value(const struct table *t, size_t col, const char *v)
{
	long long n;

	if (v == NULL)
		return json_null();
	if (is_integer(t, col) && parse_integer(v, &n))  /* checked by table_add */
		return json_integer((json_int_t)n);
	return jsontext_string(v);
}

/* row_object - row r as an object keyed by the headers, in their order */
static json_t *
row_object(const struct table *t, size_t r)
{
	json_t *o = json_object();

	for (size_t c = 0; o != NULL && c < t->ncols; c++) {
		json_t *v = cell_value(t, c, t->cells[r * t->ncols + c]);

		/* json_object_set_new takes v, also when it fails */
		if (v == NULL || json_object_set_new(o, t->headers[c], v) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

int
table_print_json(const struct table *t, FILE *fp)
{
	json_t **rows = calloc(t->nrows + 1, sizeof(*rows));
	int rc = -1;

	if (rows == NULL)
		return -1;
	/* Every row is built before anything is printed: no half output
	 * when memory runs out. */
	for (size_t r = 0; r < t->nrows; r++)
		if ((rows[r] = row_object(t, r)) == NULL)
			goto out;
	fputc('[', fp);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs(r ? ",\n " : "\n ", fp);
		if (json_dumpf(rows[r], fp, 0) != 0)
			goto out;
	}
	fputs(t->nrows ? "\n]\n" : "]\n", fp);
	rc = fflush(fp) == 0 && !ferror(fp) ? 0 : -1;
out:
	for (size_t r = 0; r < t->nrows; r++)
		json_decref(rows[r]);
	free(rows);
	return rc;
}

void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
