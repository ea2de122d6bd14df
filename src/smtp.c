/*
 * smtp - one message to the local Postfix through libcurl.  See smtp.h.
 *
 * libcurl speaks the protocol (EHLO, MAIL FROM, RCPT TO, DATA with the dot
 * stuffing); its debug callback shows the server's replies, from which the
 * last one is kept: Postfix's "250 ... queued as QID" names the queue file,
 * so the daemon's log can say where the mail went.
 *
 * libcurl is loaded here, in the child that sends (dynlib.h): the daemon
 * itself never maps it nor the TLS, Kerberos and LDAP libraries it pulls in.
 */
#include "smtp.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "dynlib.h"

/* Debian's libcurl4 (libcurl4-openssl-dev builds against it). */
#define CURL_LIBRARY "libcurl.so.4"

#define CURL_FUNCTIONS(X) \
	X(global_init, curl_global_init) X(easy_init, curl_easy_init) \
	X(easy_setopt, curl_easy_setopt) X(easy_perform, curl_easy_perform) \
	X(easy_strerror, curl_easy_strerror) X(easy_cleanup, curl_easy_cleanup) \
	X(slist_append, curl_slist_append) X(slist_free_all, curl_slist_free_all)

static struct {
	CURL_FUNCTIONS(DYNLIB_MEMBER)
} curl;

static const char *const curl_names[] = { CURL_FUNCTIONS(DYNLIB_NAME) };
#define CURL_NFUNCS (sizeof(curl_names) / sizeof(curl_names[0]))
DYNLIB_API_CHECK(curl, CURL_NFUNCS);

/* load_curl - libcurl, once, with its global set-up; -1 with the reason */
static int
load_curl(char *err, size_t errlen)
{
	static void *handle;

	if (handle != NULL)
		return 0;
	if (dynlib_load(&handle, CURL_LIBRARY, "libcurl4", curl_names, &curl, CURL_NFUNCS,
	    err, errlen) != 0)
		return -1;
	if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl cannot start");
		return -1;
	}
	return 0;
}

struct upload {
	const char *data;
	size_t len, off;
};

struct replies {
	char last[512];            /* the server's last reply line */
};

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/* debug_cb - keep the server's last reply line */
static int
debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct replies *r = arg;
	size_t n = size;

	(void)h;
	if (type != CURLINFO_HEADER_IN)
		return 0;
	while (n && (data[n - 1] == '\n' || data[n - 1] == '\r'))
		n--;
	if (n >= sizeof(r->last))
		n = sizeof(r->last) - 1;
	memcpy(r->last, data, n);
	r->last[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)r->last[i] < 0x20)
			r->last[i] = ' ';
	return 0;
}

int
smtp_send(const struct smtp_message *m, char *result, size_t rlen)
{
	char url[512], from[300], errbuf[CURL_ERROR_SIZE];
	struct curl_slist *rcpt = NULL;
	struct upload up = { m->data, m->len, 0 };
	struct replies rep = { "" };
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	CURL *h;

	errbuf[0] = '\0';
	if (load_curl(result, rlen) != 0)
		return -1;
	if ((h = curl.easy_init()) == NULL) {
		snprintf(result, rlen, "libcurl cannot start");
		return -1;
	}
	snprintf(url, sizeof(url), "smtp://%s/%s", m->server, m->helo);
	snprintf(from, sizeof(from), "<%s>", m->from);
	for (size_t i = 0; i < m->nto; i++) {
		char to[300];
		struct curl_slist *n;

		snprintf(to, sizeof(to), "<%s>", m->to[i]);
		if ((n = curl.slist_append(rcpt, to)) == NULL)
			goto out;
		rcpt = n;
	}
	if (curl.easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp") != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_MAIL_FROM, from) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_READFUNCTION, read_cb) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_READDATA, &up) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_TIMEOUT, m->timeout) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, m->timeout) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_DEBUGDATA, &rep) != CURLE_OK ||
	    curl.easy_setopt(h, CURLOPT_VERBOSE, 1L) != CURLE_OK)
		goto out;
	rc = curl.easy_perform(h);
out:
	if (rc == CURLE_OK)
		snprintf(result, rlen, "%s", rep.last[0] ? rep.last : "accepted");
	else
		snprintf(result, rlen, "smtp://%s: %s%s%s", m->server,
		    errbuf[0] ? errbuf : curl.easy_strerror(rc),
		    rep.last[0] ? "; the server said: " : "", rep.last);
	curl.slist_free_all(rcpt);
	curl.easy_cleanup(h);
	return rc == CURLE_OK ? 0 : -1;
}
