/*
 * holdmap_impl - inside the holdmap module: the table of functions a map
 * backend fills in, and the helpers the front (holdmap.c), the backends
 * (holdmap_sqlite.c, holdmap_hash.c) and the queue release (holdqueue.c)
 * share (holdmap_util.c).  Other modules use holdmap.h, never this.
 *
 * A backend is chosen by the map spec's type, the text before ':' (as
 * enforce.c chooses by action).  The front checks what every map refuses
 * (an empty key; an empty value or one with control characters) and folds
 * the key to lower case before a backend sees it; a backend refuses what
 * only it cannot store (hash: keys that would change the source file).
 *
 * Memory: a backend's state is allocated by its open and freed by its
 * close; strings passed in are the caller's and are copied if kept.
 */
#ifndef MAILJAIL_HOLDMAP_IMPL_H
#define MAILJAIL_HOLDMAP_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "holdmap.h"
#include "log.h"

/* The most files Postfix opens for one map (sqlite: the .cf and the .db). */
#define HOLDMAP_READS_MAX 2

struct holdmap_backend {
	const char *type;           /* "sqlite" for "sqlite:/path" */
	/* Create or load the map at path (absolute, checked by the front).
	 * confdir is Postfix's config directory or NULL. */
	int (*open)(void **state, const char *path, enum holdmap_kind kind,
	    const char *confdir, char *err, size_t errlen);
	void (*close)(void *state);
	/* key: non-empty, folded; value: non-empty, no control characters.
	 * Same returns as holdmap_add, holdmap_remove, holdmap_expire. */
	int (*add)(void *state, const char *key, const char *value,
	    int64_t expires_at);
	int (*remove)(void *state, const char *key);
	int (*expire)(void *state, int64_t now);
	/* Make changes visible to Postfix (NULL: they are at once). */
	int (*sync)(void *state);
	/* The files the map writes, strings owned by state. */
	size_t (*files)(const void *state, const char *out[HOLDMAP_FILES_MAX]);
	/* The files Postfix opens for the map at path (malloc'd into out);
	 * how many, or -1 (out of memory). */
	int (*postfix_reads)(const char *path, enum holdmap_kind kind,
	    char *out[HOLDMAP_READS_MAX]);
	/* What main.cf names: buf, or NULL if it does not fit. */
	const char *(*postfix_name)(const char *path, enum holdmap_kind kind,
	    char *buf, size_t len);
};

extern const struct holdmap_backend holdmap_sqlite_backend;
extern const struct holdmap_backend holdmap_hash_backend;

/* printf into the caller's error buffer (which may be NULL) */
void holdmap_seterr(char *err, size_t errlen, const char *fmt, ...)
    MJ_PRINTF(3, 4);
/* asprintf that returns NULL on failure */
char *holdmap_asprintf(const char *fmt, ...) MJ_PRINTF(1, 2);
/* A lower-case copy (malloc'd), as Postfix folds lookup keys (ASCII). */
char *holdmap_fold_key(const char *key);
/* A growing NUL-terminated text; starts zeroed, the caller frees buf. */
struct holdmap_text {
	char *buf;
	size_t len, cap;
};
/* Append n bytes of s; false: out of memory. */
bool holdmap_text_add(struct holdmap_text *t, const char *s, size_t n);

/*
 * Replace path with len bytes of data, mode `mode`: a temp file in the same
 * directory, fsync, rename, fsync of the directory, so Postfix and a crash
 * see the old or the new file, never half of one.  0, or -1 with err.
 */
int holdmap_write_atomic(const char *path, const char *data, size_t len,
    mode_t mode, char *err, size_t errlen);

/*
 * Run the Postfix tool at `tool` (an absolute path) with "-c confdir" when
 * confdir is not NULL, then args (NULL-terminated), by fork/execv, never a
 * shell.  Feeds `in` (if not NULL) to its stdin, or collects its stdout
 * into *out (malloc'd, NUL-terminated) if out is not NULL; never both.
 * Its stderr is ours.  The exit status (0..255), or -1 (logged) if it
 * could not run or was killed.
 */
int holdmap_run_postfix(const char *tool, const char *confdir,
    const char *const *args, const char *in, size_t inlen, char **out);

#endif
