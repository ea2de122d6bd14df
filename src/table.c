/*
 * table - aligned tables and JSON.  See table.h.
 */
#include "table.h"

#include <stdlib.h>
#include <string.h>

void
table_init(struct table *t, const char *const *headers, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->headers = headers;
	t->ncols = ncols;
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

static void
json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"': fputs("\\\"", fp); break;
		case '\\': fputs("\\\\", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\t': fputs("\\t", fp); break;
		case '\r': fputs("\\r", fp); break;
		default:
			if (*c < 0x20 || *c == 0x7f)
				fprintf(fp, "\\u%04x", *c);
			else
				fputc(*c, fp);
		}
	}
	fputc('"', fp);
}

void
table_print_json(const struct table *t, FILE *fp)
{
	fputc('[', fp);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs(r ? ",\n {" : "\n {", fp);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = t->cells[r * t->ncols + c];
			if (c)
				fputs(", ", fp);
			json_string(fp, t->headers[c]);
			fputs(": ", fp);
			if (v)
				json_string(fp, v);
			else
				fputs("null", fp);
		}
		fputc('}', fp);
	}
	fputs(t->nrows ? "\n]\n" : "]\n", fp);
}

void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
