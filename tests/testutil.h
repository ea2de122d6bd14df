/*
 * testutil - small helpers shared by the tests: temp dirs and files, and the
 * source/build directories meson tells us about.
 */
#ifndef MAILJAIL_TESTUTIL_H
#define MAILJAIL_TESTUTIL_H

#include <stddef.h>

/* A fresh directory under $TMPDIR (or /tmp); the path is static storage
 * per call site's buffer. */
void tu_mkdtemp(char *buf, size_t len);
/* Write text to dir/name; returns the full path in out. */
void tu_write(const char *dir, const char *name, const char *text, char *out, size_t len);
/* Remove a directory tree (best effort). */
void tu_rmrf(const char *dir);
const char *tu_srcdir(void);
const char *tu_builddir(void);
/* Run a shell command; returns its exit status (or -1). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a shell command and capture its stdout (malloc'd, NUL-terminated). */
char *tu_sh_output(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
