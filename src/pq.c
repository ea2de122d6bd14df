/*
 * pq - libpq loaded on demand.  See pq.h.
 */
#include "pq.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Debian's libpq5 (the soname every libpq since 8.2 has kept). */
#define PQ_LIBRARY "libpq.so.5"

struct pq_api pq;

int
pq_load(char *err, size_t errlen)
{
	static bool loaded;
	struct pq_api api;
	void *h;

	if (loaded)
		return 0;
	if ((h = dlopen(PQ_LIBRARY, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "PostgreSQL needs libpq: %s (apt-get install libpq5)",
		    dlerror());
		return -1;
	}
	/* A function pointer from dlsym's void *: POSIX guarantees this
	 * works; ISO C has no word for it, hence the memcpy. */
#define PQ_RESOLVE(f) { \
		void *sym = dlsym(h, #f); \
		if (sym == NULL) { \
			snprintf(err, errlen, "%s has no %s: PostgreSQL 14's libpq or later " \
			    "is needed (pipeline mode)", PQ_LIBRARY, #f); \
			dlclose(h); \
			return -1; \
		} \
		memcpy(&api.f, &sym, sizeof(sym)); \
	}
	PQ_FUNCTIONS(PQ_RESOLVE)
#undef PQ_RESOLVE
	pq = api;
	loaded = true;
	return 0;
}
