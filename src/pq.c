/*
 * pq - libpq loaded on demand (dynlib.h).  See pq.h.
 */
#include "pq.h"

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
DYNLIB_API_CHECK(pq, PQ_NFUNCS);

int
pq_load(char *err, size_t errlen)
{
	static void *handle;

	return dynlib_load(&handle, PQ_LIBRARY, "libpq5", pq_names, &pq, PQ_NFUNCS, err,
	    errlen);
}
