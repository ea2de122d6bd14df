/*
 * holdqueue - releasing held mail through Postfix's own tools: "postqueue
 * -j" lists the queue (one JSON object per line), the wanted messages of
 * the "hold" queue go back with "postsuper -H -" (queue ids on standard
 * input), and "postqueue -i" asks for each to be delivered now.  The
 * functions are declared in holdmap.h (the module's public face).
 *
 * Memory: everything is freed before holdmap_release_queue returns.
 *
 * SECURITY: postqueue's output carries envelope addresses, i.e. text
 * chosen by whoever sent the mail.  Only a queue id that is purely
 * alphanumeric is ever passed on, and on standard input, not as an
 * argument; commands are run with fork/execv, never through a shell.
 */
#include "holdmap.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holdmap_impl.h"
#include "log.h"

#define POSTQUEUE_PATH  "/usr/sbin/postqueue"
#define POSTSUPER_PATH  "/usr/sbin/postsuper"
#define QID_MAX         64
#define QNAME_MAX       32
#define SENDER_MIN      4096    /* room for any sender postqueue shows */

/* skip_ws - JSON whitespace */
static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* hex4 - four hex digits, or -1 */
static long
hex4(const char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* put_utf8 - encode cp into out[*n], staying below len; false if no room */
static bool
put_utf8(char *out, size_t len, size_t *n, unsigned long cp)
{
	char b[4];
	size_t k;

	if (cp < 0x80) {
		b[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	if (out != NULL) {
		if (*n + k >= len)
			return false;
		memcpy(out + *n, b, k);
	}
	*n += k;
	return true;
}

/*
 * json_string - p at the opening quote; decode into out (NULL: just skip).
 * Returns the position after the closing quote, or NULL if malformed, too
 * long or containing \u0000 (which would silently shorten a C string).
 */
static const char *
json_string(const char *p, char *out, size_t len)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p;
		unsigned long cp;
		long h, lo;

		if (c == '\0' || c < 0x20)
			return NULL;
		if (c == '"')
			break;
		if (c != '\\') {
			if (out != NULL) {
				if (n + 1 >= len)
					return NULL;
				out[n] = (char)c;
			}
			n++;
			p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"': case '\\': case '/':
			cp = (unsigned char)*p;
			p++;
			break;
		case 'b': cp = '\b'; p++; break;
		case 'f': cp = '\f'; p++; break;
		case 'n': cp = '\n'; p++; break;
		case 'r': cp = '\r'; p++; break;
		case 't': cp = '\t'; p++; break;
		case 'u':
			if ((h = hex4(p + 1)) < 0)
				return NULL;
			p += 5;
			if (h >= 0xd800 && h <= 0xdbff) {
				if (p[0] != '\\' || p[1] != 'u'
				    || (lo = hex4(p + 2)) < 0xdc00 || lo > 0xdfff)
					return NULL;
				p += 6;
				cp = 0x10000 + (((unsigned long)h - 0xd800) << 10)
				    + ((unsigned long)lo - 0xdc00);
			} else if (h >= 0xdc00 && h <= 0xdfff)
				return NULL;
			else
				cp = (unsigned long)h;
			if (cp == 0)
				return NULL;
			break;
		default:
			return NULL;
		}
		if (!put_utf8(out, len, &n, cp))
			return NULL;
	}
	if (out != NULL)
		out[n] = '\0';
	return p + 1;
}

/* json_skip - skip any JSON value (nested ones too), bounded depth */
static const char *
json_skip(const char *p, int depth)
{
	p = skip_ws(p);
	if (depth > 32)
		return NULL;
	if (*p == '"')
		return json_string(p, NULL, 0);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';

		p = skip_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if ((p = json_string(skip_ws(p), NULL, 0)) == NULL)
					return NULL;
				p = skip_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if ((p = json_skip(p, depth + 1)) == NULL)
				return NULL;
			p = skip_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	/* number, true, false, null */
	if (!(*p == '-' || isalnum((unsigned char)*p)))
		return NULL;
	while (*p == '-' || *p == '+' || *p == '.' || isalnum((unsigned char)*p))
		p++;
	return p;
}

/* holdmap_parse_queue_line - see holdmap.h */
int
holdmap_parse_queue_line(const char *line, char *queue_name, size_t qnlen,
    char *queue_id, size_t qilen, char *sender, size_t slen)
{
	char name[32];
	const char *p = skip_ws(line);

	if (qnlen == 0 || qilen == 0 || slen == 0)
		return -1;
	queue_name[0] = queue_id[0] = sender[0] = '\0';
	if (*p++ != '{')
		return -1;
	p = skip_ws(p);
	if (*p == '}')
		return *skip_ws(p + 1) == '\0' ? 0 : -1;
	for (;;) {
		const char *q;

		p = skip_ws(p);
		/* A member name we don't know may be long: then it is skipped. */
		if ((q = json_string(p, name, sizeof(name))) == NULL) {
			name[0] = '\0';
			if ((q = json_string(p, NULL, 0)) == NULL)
				return -1;
		}
		p = skip_ws(q);
		if (*p++ != ':')
			return -1;
		p = skip_ws(p);
		if (strcmp(name, "queue_name") == 0 || strcmp(name, "queue_id") == 0
		    || strcmp(name, "sender") == 0) {
			char *dst = name[6] == 'n' ? queue_name
			    : name[6] == 'i' ? queue_id : sender;
			size_t dlen = name[6] == 'n' ? qnlen
			    : name[6] == 'i' ? qilen : slen;

			if (*p != '"' || (p = json_string(p, dst, dlen)) == NULL)
				return -1;
		} else if ((p = json_skip(p, 0)) == NULL)
			return -1;
		p = skip_ws(p);
		if (*p == '}')
			break;
		if (*p++ != ',')
			return -1;
	}
	return *skip_ws(p + 1) == '\0' ? 0 : -1;
}

/* qid_ok - Postfix queue ids are alphanumeric; anything else is not one */

/* qid_ok - Postfix queue ids are alphanumeric; anything else is not one */
static bool
qid_ok(const char *q)
{
	if (*q == '\0' || strlen(q) >= QID_MAX)
		return false;
	for (; *q; q++)
		if (!isalnum((unsigned char)*q))
			return false;
	return true;
}

/* wanted - one of qids, or sent by sender (if not NULL) */
static bool
wanted(const char *qid, const char *from, const char *const *qids,
    size_t nqids, const char *sender)
{
	for (size_t k = 0; k < nqids; k++)
		if (strcmp(qids[k], qid) == 0)
			return true;
	return sender != NULL && strcmp(sender, from) == 0;
}

/*
 * pick_held - run "postqueue -j" and put the ids of the wanted messages in
 * the hold queue into ids, one per line (*n of them).  0, or -1 (logged).
 */
static int
pick_held(const char *confdir, const char *const *qids, size_t nqids,
    const char *sender, struct holdmap_text *ids, size_t *n)
{
	static const char *const args[] = { "-j", NULL };
	char qname[QNAME_MAX], qid[QID_MAX], *from = NULL;
	char *json = NULL, *line, *save = NULL;
	size_t flen = sender != NULL && strlen(sender) + 1 > SENDER_MIN
	    ? strlen(sender) + 1 : SENDER_MIN;
	int st, rc = -1;

	*n = 0;
	if ((from = malloc(flen)) == NULL) {
		log_warnx("release: out of memory");
		goto out;
	}
	if ((st = holdmap_run_postfix(POSTQUEUE_PATH, confdir, args, NULL, 0,
	    &json)) != 0 || json == NULL) {
		log_warnx("postqueue -j failed (status %d)", st);
		goto out;
	}
	for (line = strtok_r(json, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (holdmap_parse_queue_line(line, qname, sizeof(qname), qid,
		    sizeof(qid), from, flen) == -1) {
			log_warnx("postqueue -j: skipping a line I cannot parse");
			continue;
		}
		if (strcmp(qname, "hold") != 0 || !qid_ok(qid)
		    || !wanted(qid, from, qids, nqids, sender))
			continue;
		if (!holdmap_text_add(ids, qid, strlen(qid))
		    || !holdmap_text_add(ids, "\n", 1)) {
			log_warnx("release: out of memory");
			goto out;
		}
		(*n)++;
	}
	rc = 0;
out:
	free(json);
	free(from);
	return rc;
}

/*
 * deliver_now - "postqueue -i ID" for each line of ids: released mail
 * would otherwise wait for the next queue run.  A failure only delays.
 */
static void
deliver_now(const char *confdir, char *ids)
{
	char *qid, *save = NULL;
	int st;

	for (qid = strtok_r(ids, "\n", &save); qid != NULL;
	    qid = strtok_r(NULL, "\n", &save)) {
		const char *args[] = { "-i", qid, NULL };

		if ((st = holdmap_run_postfix(POSTQUEUE_PATH, confdir, args, NULL,
		    0, NULL)) != 0)
			log_warnx("postqueue -i %s failed (status %d); it will "
			    "go at the next queue run", qid, st);
	}
}

/* holdmap_release_queue - see holdmap.h */
int
holdmap_release_queue(const char *postfix_config_dir,
    const char *const *qids, size_t nqids, const char *sender, int *released)
{
	static const char *const args[] = { "-H", "-", NULL };
	struct holdmap_text ids = { 0 };
	size_t n;
	int st, rc = -1;

	*released = 0;
	if (pick_held(postfix_config_dir, qids, nqids, sender, &ids, &n) != 0)
		goto out;
	if (n == 0) {
		rc = 0;
		goto out;
	}
	if ((st = holdmap_run_postfix(POSTSUPER_PATH, postfix_config_dir, args,
	    ids.buf, ids.len, NULL)) != 0) {
		log_warnx("postsuper -H failed (status %d)", st);
		goto out;
	}
	*released = (int)n;
	deliver_now(postfix_config_dir, ids.buf);
	rc = 0;
out:
	free(ids.buf);
	return rc;
}
