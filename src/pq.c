/*
 * pq - libpq loaded on demand (dynlib.h).  See pq.h.
 */
#include "pq.h"

#include <string.h>

#include "dynlib.h"

/* Debian's libpq5 (the soname every libpq since 8.2 has kept). */
#define PQ_LIBRARY "libpq.so.5"

struct pq_api pq;

static const char *const pq_names[] = {
#define PQ_NAME(f) #f,
	PQ_FUNCTIONS(PQ_NAME)
#undef PQ_NAME
};
#define PQ_NFUNCS (sizeof(pq_names) / sizeof(pq_names[0]))

int
pq_load(char *err, size_t errlen)
{
	static void *handle;
	void (*fns[PQ_NFUNCS])(void);
	size_t i = 0;

	if (handle != NULL)
		return 0;
	if (dynlib_load(&handle, PQ_LIBRARY, "libpq5", pq_names, fns, PQ_NFUNCS,
	    err, errlen) != 0)
		return -1;
#define PQ_SET(f) memcpy(&pq.f, &fns[i++], sizeof(pq.f));
	PQ_FUNCTIONS(PQ_SET)
#undef PQ_SET
	return 0;
}
