/*
 * jsontext - text of any bytes as a JSON string.  See jsontext.h.
 */
#include "jsontext.h"

#include <stdlib.h>
#include <string.h>

json_t *
jsontext_string(const char *s)
{
	static const char repl[] = "\xef\xbf\xbd";
	json_t *v;
	size_t n = 0;
	char *r, *p;

	if (s == NULL)
		s = "";
	if ((v = json_string(s)) != NULL)
		return v;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		n += *c < 0x80 ? 1 : sizeof(repl) - 1;
	if ((r = malloc(n + 1)) == NULL)
		return NULL;
	p = r;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c < 0x80) {
			*p++ = (char)*c;
		} else {
			memcpy(p, repl, sizeof(repl) - 1);
			p += sizeof(repl) - 1;
		}
	}
	*p = '\0';
	v = json_string(r);
	free(r);
	return v;
}
