/*
 * smtp - one message to the local Postfix through libcurl.  See smtp.h.
 *
 * libcurl speaks the protocol (EHLO, MAIL FROM, RCPT TO, DATA with the dot
 * stuffing); its debug callback shows the server's replies, from which the
 * last one is kept: Postfix's "250 ... queued as QID" names the queue file,
 * so the daemon's log can say where the mail went.
 */
#include "smtp.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

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
	if ((h = curl_easy_init()) == NULL) {
		snprintf(result, rlen, "libcurl cannot start");
		return -1;
	}
	snprintf(url, sizeof(url), "smtp://%s/%s", m->server, m->helo);
	snprintf(from, sizeof(from), "<%s>", m->from);
	for (size_t i = 0; i < m->nto; i++) {
		char to[300];
		struct curl_slist *n;

		snprintf(to, sizeof(to), "<%s>", m->to[i]);
		if ((n = curl_slist_append(rcpt, to)) == NULL)
			goto out;
		rcpt = n;
	}
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_READDATA, &up) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, m->timeout) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, m->timeout) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &rep) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L) != CURLE_OK)
		goto out;
	rc = curl_easy_perform(h);
out:
	if (rc == CURLE_OK)
		snprintf(result, rlen, "%s", rep.last[0] ? rep.last : "accepted");
	else
		snprintf(result, rlen, "smtp://%s: %s%s%s", m->server,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc),
		    rep.last[0] ? "; the server said: " : "", rep.last);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(h);
	return rc == CURLE_OK ? 0 : -1;
}
