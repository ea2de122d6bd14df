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
 * chosen by whoever sent the mail, read by jansson (no hand-written
 * parser).  Only a queue id that is purely alphanumeric is ever passed on
 * (to postsuper on standard input, to "postqueue -i" as its argument), so
 * it cannot be taken for an option; commands are run with fork/execv,
 * never through a shell.
 */
#include "holdmap.h"

#include <ctype.h>
#include <jansson.h>
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

/* copy_field - a decoded string into dst; false if too long or with NUL */
static bool
copy_field(char *dst, size_t dstlen, const char *src, size_t len)
{
	if (len >= dstlen || memchr(src, '\0', len) != NULL)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/*
 * holdmap_parse_queue_line - see holdmap.h.  jansson does the reading: the
 * line must be exactly one JSON object; duplicate member names are refused
 * (which one counts would be a guess), as are invalid UTF-8, \u0000 (the
 * default without JSON_ALLOW_NUL: it would silently shorten a C string)
 * and nesting deeper than JSON_PARSER_MAX_DEPTH.  Only the top level's
 * members are looked at, so a "sender" inside "recipients" is not one.
 */
int
holdmap_parse_queue_line(const char *line, char *queue_name, size_t qnlen,
    char *queue_id, size_t qilen, char *sender, size_t slen)
{
	const char *qn = "", *qi = "", *snd = "";
	size_t qnl = 0, qil = 0, sndl = 0;
	json_error_t jerr;
	json_t *root;
	int rc = -1;

	if (qnlen == 0 || qilen == 0 || slen == 0)
		return -1;
	queue_name[0] = queue_id[0] = sender[0] = '\0';
	if ((root = json_loads(line, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		goto out;
	/* "s?s%": the member may be absent, and if present is a string. */
	if (json_unpack_ex(root, &jerr, 0, "{s?s%, s?s%, s?s%}",
	    "queue_name", &qn, &qnl, "queue_id", &qi, &qil,
	    "sender", &snd, &sndl) != 0)
		goto out;
	if (!copy_field(queue_name, qnlen, qn, qnl)
	    || !copy_field(queue_id, qilen, qi, qil)
	    || !copy_field(sender, slen, snd, sndl))
		goto out;
	rc = 0;
out:
	if (rc != 0)
		queue_name[0] = queue_id[0] = sender[0] = '\0';
	json_decref(root);
	return rc;
}

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
