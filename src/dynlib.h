/*
 * dynlib - a shared library loaded when a feature that needs it is used
 * (dlopen), not linked: libpq (a fleet's PostgreSQL), libcurl (notification
 * mail, in the child that sends it) and libmicrohttpd ([metrics] listen)
 * pull in some thirty libraries between them (OpenSSL, GnuTLS, Kerberos,
 * LDAP...).  Linked, every mailjail process mapped them all: 6 MB more
 * resident memory at every start, for features most hosts never turn on.
 *
 * A user declares its functions as an X-macro list X(member, symbol) and a
 * struct of pointers typed with __typeof__(symbol) (the library's own
 * prototypes, from its header), then calls dynlib_load with that struct
 * and the symbol names in the same order (DYNLIB_API_CHECK says the struct
 * is function pointers only).  Member names differ from the symbols
 * because some libraries define their functions as macros too
 * (curl_easy_setopt).
 *
 * Memory: a loaded library stays loaded until the process ends.
 */
#ifndef MAILJAIL_DYNLIB_H
#define MAILJAIL_DYNLIB_H

#include <stddef.h>

/*
 * Load soname (once per handle: *handle non-NULL means done) and resolve
 * names[0..n) into the n function pointers of the struct at api, in order.
 * 0, or -1 with a one-line reason in err that names the package to install
 * (package) when the library is missing (api is then not to be used).
 */
int dynlib_load(void **handle, const char *soname, const char *package,
    const char *const *names, void *api, size_t n, char *err, size_t errlen);

/* For a list X(member, symbol): a member typed with the symbol's own
 * prototype, and the symbol's name (a struct's members, a names[] array). */
#define DYNLIB_MEMBER(m, f) __typeof__(f) *m;
#define DYNLIB_NAME(m, f) #f,

/* The struct api holds n function pointers and nothing else. */
#define DYNLIB_API_CHECK(api, n) \
	_Static_assert(sizeof(api) == (n) * sizeof(void (*)(void)), \
	    #api ": function pointers only, one per name")

#endif
