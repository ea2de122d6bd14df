/*
 * exporter - the textfile, /metrics, and the saved counters.  See
 * exporter.h.
 */
#include "exporter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "dynlib.h"
#include "log.h"

/* libmicrohttpd, loaded when [metrics] listen is set (dynlib.h: it pulls in
 * GnuTLS, which a daemon without /metrics should not map). */
#define MHD_LIBRARY "libmicrohttpd.so.12"

#define MHD_FUNCTIONS(X) \
	X(add_response_header, MHD_add_response_header) \
	X(create_response_from_buffer, MHD_create_response_from_buffer) \
	X(destroy_response, MHD_destroy_response) \
	X(get_daemon_info, MHD_get_daemon_info) X(get_timeout, MHD_get_timeout) \
	X(queue_response, MHD_queue_response) X(run, MHD_run) \
	X(start_daemon, MHD_start_daemon) X(stop_daemon, MHD_stop_daemon)

static struct {
	MHD_FUNCTIONS(DYNLIB_MEMBER)
} mhd;

static const char *const mhd_names[] = { MHD_FUNCTIONS(DYNLIB_NAME) };
#define MHD_NFUNCS (sizeof(mhd_names) / sizeof(mhd_names[0]))
DYNLIB_API_CHECK(mhd, MHD_NFUNCS);

/* load_mhd - libmicrohttpd, once; -1 with the reason in err */
static int
load_mhd(char *err, size_t errlen)
{
	static void *handle;

	return dynlib_load(&handle, MHD_LIBRARY, "libmicrohttpd12", mhd_names, &mhd,
	    MHD_NFUNCS, err, errlen);
}

/* Scrapers are few (a Prometheus or two); anything more is not one. */
#define HTTP_CONNECTIONS_MAX 8
#define HTTP_TIMEOUT_SECS 10

struct exporter {
	struct metrics *m;
	struct MHD_Daemon *httpd;
	int http_fd;               /* libmicrohttpd's epoll descriptor */
	char *listen;
	int64_t next_flush;
	int64_t last_http_run;
	bool failing;              /* the last textfile write failed (said once) */
	bool save_failing;         /* the last counter save failed (said once) */
	/* What a request renders from: set by exporter_tick before serving. */
	struct store *st;
	const struct config *cfg;
	int64_t now;
};

/* http_log - libmicrohttpd's own messages, into ours */
static void
http_log(void *arg, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)arg;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warnx("metrics http: %s", msg);
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *text, size_t len,
    enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = mhd.create_response_from_buffer(len, (void *)text, mode);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	(void)mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, status == 200 ?
	    "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8");
	rc = mhd.queue_response(c, status, r);
	mhd.destroy_response(r);
	return rc;
}

/* handle - GET (or HEAD) /metrics; nothing else is here */
static enum MHD_Result
handle(void *arg, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **state)
{
	static const char not_found[] = "mailjail: only /metrics is here\n";
	static const char bad_method[] = "mailjail: GET /metrics\n";
	struct exporter *e = arg;
	char *text;
	size_t len;

	(void)version;
	(void)upload;
	(void)state;
	if (*upload_size != 0) {
		*upload_size = 0;   /* a body is not read, only refused below */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, bad_method, sizeof(bad_method) - 1,
		    MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1,
		    MHD_RESPMEM_PERSISTENT);
	if ((text = metrics_render(e->m, e->st, e->cfg, e->now, &len)) == NULL)
		return MHD_NO;
	return reply(c, MHD_HTTP_OK, text, len, MHD_RESPMEM_MUST_FREE);
}

/* listen_addr - "IP:PORT" or "[IPv6]:PORT" (config.c checked it) */
static int
listen_addr(const char *v, struct sockaddr_storage *ss, bool *v6)
{
	char host[64];
	const char *colon = strrchr(v, ':');
	size_t hl;
	long port;

	if (colon == NULL)
		return -1;
	port = strtol(colon + 1, NULL, 10);
	*v6 = v[0] == '[';
	hl = (size_t)(colon - v) - (*v6 ? 2 : 0);
	if (hl >= sizeof(host) || port <= 0 || port > 65535)
		return -1;
	memcpy(host, v + (*v6 ? 1 : 0), hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (*v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : -1;
	}
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -1;
	}
}

bool
exporter_needs_privilege(const struct metrics_config *mc)
{
	struct sockaddr_storage ss;
	bool v6;

	if (mc->listen == NULL || listen_addr(mc->listen, &ss, &v6) != 0)
		return false;
	return ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port) < 1024;
}

int
exporter_open(struct exporter **out, struct metrics *m, const struct metrics_config *mc)
{
	struct exporter *e = calloc(1, sizeof(*e));
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	bool v6;

	*out = NULL;
	if (e == NULL) {
		log_warnx("out of memory");
		return -1;
	}
	e->m = m;
	e->http_fd = -1;
	if (mc->listen == NULL) {
		*out = e;
		return 0;
	}
	if ((e->listen = strdup(mc->listen)) == NULL || listen_addr(mc->listen, &ss, &v6) != 0) {
		log_warnx("[metrics] listen %s: not an address to listen on", mc->listen);
		goto fail;
	}
	{
		char why[512];

		if (load_mhd(why, sizeof(why)) != 0) {
			log_warnx("[metrics] listen %s: %s", mc->listen, why);
			goto fail;
		}
	}
	errno = 0;
	e->httpd = mhd.start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, handle, e,
	    MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL,   /* first: see its doc */
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_SECS,
	    MHD_OPTION_END);
	if (e->httpd == NULL) {
		log_warnx("[metrics] listen %s: cannot listen%s%s", mc->listen,
		    errno ? ": " : "", errno ? strerror(errno) : "");
		goto fail;
	}
	if ((info = mhd.get_daemon_info(e->httpd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
		log_warnx("[metrics] listen %s: libmicrohttpd has no epoll descriptor", mc->listen);
		goto fail;
	}
	e->http_fd = info->epoll_fd;
	log_info("metrics: serving http://%s/metrics", mc->listen);
	*out = e;
	return 0;
fail:
	exporter_close(e);
	return -1;
}

int
exporter_flush(struct exporter *e, struct store *st, const struct config *cfg, int64_t now,
    char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = 0;

	/* Said once per outage (a full disk refuses it every time). */
	if (metrics_save(e->m, st) != 0) {
		if (!e->save_failing)
			log_warnx("metrics: saving the counters in %s failed: %s (tried again "
			    "every %d s)", store_path(st), store_errmsg(st), EXPORTER_SECS);
		e->save_failing = true;
	} else {
		e->save_failing = false;
	}
	if (cfg->metrics.textfile == NULL)
		return 0;
	if ((text = metrics_render(e->m, st, cfg, now, &len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = metrics_write_file(cfg->metrics.textfile, text, len, err, errlen);
	free(text);
	return rc;
}

void
exporter_tick(struct exporter *e, struct store *st, const struct config *cfg, int64_t now)
{
	if (e->httpd != NULL) {
		struct pollfd pfd = { e->http_fd, POLLIN, 0 };

		/* Whenever a request is ready, and once a second for the
		 * connections' timeouts. */
		if (now != e->last_http_run || poll(&pfd, 1, 0) > 0) {
			e->st = st;
			e->cfg = cfg;
			e->now = now;
			e->last_http_run = now;
			/* It may have more to do at once (a response that did
			 * not all fit in the socket): a few rounds, no more. */
			for (int i = 0; i < 4; i++) {
				MHD_UNSIGNED_LONG_LONG t;
				(void)mhd.run(e->httpd);
				if (mhd.get_timeout(e->httpd, &t) != MHD_YES || t > 0)
					break;
			}
		}
	}
	if (now >= e->next_flush || e->next_flush - now > EXPORTER_SECS) {
		char err[600];

		e->next_flush = now + EXPORTER_SECS;
		if (exporter_flush(e, st, cfg, now, err, sizeof(err)) != 0) {
			if (!e->failing)
				log_warnx("metrics: cannot write the textfile: %s (tried again "
				    "every %d s, said again once it works)", err, EXPORTER_SECS);
			e->failing = true;
		} else if (e->failing) {
			log_info("metrics: the textfile %s is written again", cfg->metrics.textfile);
			e->failing = false;
		}
	}
}

int
exporter_fd(const struct exporter *e)
{
	return e && e->httpd ? e->http_fd : -1;
}

void
exporter_close(struct exporter *e)
{
	if (e == NULL)
		return;
	if (e->httpd != NULL)
		mhd.stop_daemon(e->httpd);
	free(e->listen);
	free(e);
}
