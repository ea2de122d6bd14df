/*
 * dynlib - libraries loaded on demand.  See dynlib.h.
 */
#include "dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* dlsym's void * goes into a function pointer's storage as its bytes. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers as wide as void *");

int
dynlib_load(void **handle, const char *soname, const char *package,
    const char *const *names, void *api, size_t n, char *err, size_t errlen)
{
	void *h;

	if (*handle != NULL)
		return 0;
	if ((h = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "%s (apt-get install %s)", dlerror(), package);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		void *sym = dlsym(h, names[i]);

		if (sym == NULL) {
			snprintf(err, errlen, "%s has no %s: too old (apt-get install %s)",
			    soname, names[i], package);
			dlclose(h);
			return -1;
		}
		/* A function pointer from dlsym's void *: POSIX guarantees
		 * this works; ISO C has no word for it, hence the memcpy. */
		memcpy((char *)api + i * sizeof(void (*)(void)), &sym, sizeof(sym));
	}
	*handle = h;
	return 0;
}
