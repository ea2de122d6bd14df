/*
 * test_cfgfile - INI reading with line numbers, durations, diagnostics.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "cfgfile.h"
#include "testutil.h"

struct seen {
	char keys[16][64];
	int lines[16], section_lines[16];
	char values[16][512];
	int n;
};

static int
record(void *arg, const char *file, const char *section, int section_line,
    const char *key, const char *value, int line)
{
	struct seen *s = arg;

	(void)file;
	if (s->n < 16) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s.%s", section, key);
		snprintf(s->values[s->n], sizeof(s->values[0]), "%s", value);
		s->lines[s->n] = line;
		s->section_lines[s->n] = section_line;
		s->n++;
	}
	return 0;
}

Test(cfgfile, line_numbers_of_keys_and_sections)
{
	char dir[256], path[512];
	struct seen s = { .n = 0 };
	struct diag d;

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "a.conf",
	    "# comment\n"
	    "\n"
	    "[one]\n"
	    "a = 1\n"
	    "; another comment\n"
	    "b = x ; not a comment\n"
	    "[two]\n"
	    "\n"
	    "c = ^warning: [^[]*\\[(?<ip>[0-9a-f:.]+)\\]\n", path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(cfgfile_parse(path, record, &s, &d), 0);
	cr_assert_eq(d.n, 0);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.keys[0], "one.a");
	cr_assert_eq(s.lines[0], 4);
	cr_assert_eq(s.section_lines[0], 3);
	cr_assert_str_eq(s.values[1], "x ; not a comment", "inline comments are off");
	cr_assert_eq(s.lines[1], 6);
	cr_assert_eq(s.lines[2], 9);
	cr_assert_eq(s.section_lines[2], 7);
	cr_assert_str_eq(s.values[2], "^warning: [^[]*\\[(?<ip>[0-9a-f:.]+)\\]");
	diag_free(&d);
	tu_rmrf(dir);
}

Test(cfgfile, long_value_keeps_line_count)
{
	char dir[256], path[512], *text;
	struct seen s = { .n = 0 };
	struct diag d;
	size_t n = 3000;

	tu_mkdtemp(dir, sizeof(dir));
	text = malloc(n + 64);
	strcpy(text, "[r]\nlong = ");
	memset(text + strlen(text), 'a', n);
	strcpy(text + 11 + n, "\nafter = 1\n");
	tu_write(dir, "long.conf", text, path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(cfgfile_parse(path, record, &s, &d), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(strlen(s.values[0]), 511, "value truncated only by the test buffer");
	cr_assert_eq(s.lines[1], 3, "a 3000-byte line is still one line");
	diag_free(&d);
	free(text);
	tu_rmrf(dir);
}

Test(cfgfile, syntax_error_has_file_and_line)
{
	char dir[256], path[512], want[600];
	struct seen s = { .n = 0 };
	struct diag d;

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "bad.conf", "[x]\na = 1\nthis line has no equals sign\n", path,
	    sizeof(path));
	diag_init(&d);
	cr_assert_eq(cfgfile_parse(path, record, &s, &d), -1);
	cr_assert_eq(d.n, 1);
	snprintf(want, sizeof(want), "%s:3: ", path);
	cr_assert(strncmp(d.msgs[0], want, strlen(want)) == 0, "got %s", d.msgs[0]);
	diag_free(&d);
	tu_rmrf(dir);
}

Test(cfgfile, missing_file_and_directory_order)
{
	char dir[256], path[512];
	struct seen s = { .n = 0 };
	struct diag d;

	diag_init(&d);
	cr_assert_eq(cfgfile_parse("/nonexistent/x.conf", record, &s, &d), -1);
	cr_assert(strstr(d.msgs[0], "/nonexistent/x.conf: cannot open") != NULL);
	diag_free(&d);

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "b.jail", "[b]\nk = 2\n", path, sizeof(path));
	tu_write(dir, "a.jail", "[a]\nk = 1\n", path, sizeof(path));
	tu_write(dir, "c.txt", "[c]\nk = 3\n", path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(cfgfile_parse_path(dir, ".jail", record, &s, &d), 0);
	cr_assert_eq(s.n, 2, "only *.jail files");
	cr_assert_str_eq(s.keys[0], "a.k");
	cr_assert_str_eq(s.keys[1], "b.k");
	diag_free(&d);
	tu_rmrf(dir);
}

Test(cfgfile, durations)
{
	int64_t v;

	cr_assert_eq(cfg_parse_duration("30s", &v), 0); cr_assert_eq(v, 30);
	cr_assert_eq(cfg_parse_duration("10m", &v), 0); cr_assert_eq(v, 600);
	cr_assert_eq(cfg_parse_duration("1h", &v), 0); cr_assert_eq(v, 3600);
	cr_assert_eq(cfg_parse_duration("1d", &v), 0); cr_assert_eq(v, 86400);
	cr_assert_eq(cfg_parse_duration("4w", &v), 0); cr_assert_eq(v, 4 * 604800);
	cr_assert_eq(cfg_parse_duration("45", &v), 0); cr_assert_eq(v, 45);
	cr_assert_eq(cfg_parse_duration("", &v), -1);
	cr_assert_eq(cfg_parse_duration("h", &v), -1);
	cr_assert_eq(cfg_parse_duration("1x", &v), -1);
	cr_assert_eq(cfg_parse_duration("1hh", &v), -1);
	cr_assert_eq(cfg_parse_duration("-1h", &v), -1);
	cr_assert_eq(cfg_parse_duration("99999999999999999999w", &v), -1);
	cr_assert_eq(cfg_parse_duration("1000w", &v), -1, "over ten years");
}

Test(cfgfile, format_duration)
{
	char b[24];

	cr_assert_str_eq(cfg_format_duration(3600, b, sizeof(b)), "1h");
	cr_assert_str_eq(cfg_format_duration(5400, b, sizeof(b)), "90m");
	cr_assert_str_eq(cfg_format_duration(2 * 86400, b, sizeof(b)), "2d");
	cr_assert_str_eq(cfg_format_duration(61, b, sizeof(b)), "61s");
	cr_assert_str_eq(cfg_format_duration(1209600, b, sizeof(b)), "2w");
}
