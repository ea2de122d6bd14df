/*
 * jsontext - text of any bytes as a jansson JSON string.  jansson refuses a
 * string that is not UTF-8; text that reaches JSON output may be anything
 * (a name typed on the command line or in a config, a target from a log
 * line), and the document must still be valid JSON.  Then each byte outside
 * ASCII becomes U+FFFD, so a reader sees that something was there.  Used by
 * the CLI's --json tables (table.c) and the notification hook's standard
 * input (notify_msg.c).
 *
 * Memory: the json_t returned is a new reference, the caller's (json_decref).
 */
#ifndef MAILJAIL_JSONTEXT_H
#define MAILJAIL_JSONTEXT_H

#include <jansson.h>

/* s (NULL: "") as a JSON string; NULL only when out of memory. */
json_t *jsontext_string(const char *s);

#endif
