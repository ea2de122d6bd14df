/*
 * smtp - hand one message to the local Postfix by SMTP, through libcurl's
 * smtp:// (Debian's libcurl4-openssl-dev).  The daemon runs with
 * no_new_privs, so sendmail(1)'s setgid postdrop cannot work from it; an
 * SMTP connection to Postfix's own smtpd on loopback needs no privilege
 * and goes through the same queue (postqueue shows it, mail.log logs it).
 *
 * smtp_send blocks until the server answered or timeout passed: notify.c
 * calls it in a child process, never in the daemon's loop.
 */
#ifndef MAILJAIL_SMTP_H
#define MAILJAIL_SMTP_H

#include <stddef.h>

struct smtp_message {
	const char *server;        /* "host:port" or "[v6]:port" */
	const char *helo;          /* the name given in EHLO */
	const char *from;          /* envelope sender */
	const char *const *to;     /* envelope recipients */
	size_t nto;
	const char *data;          /* headers, blank line, body; CRLF line ends */
	size_t len;
	long timeout;              /* seconds for the whole exchange */
};

/* Returns 0 once the server accepted the message (result: its reply, e.g.
 * "250 2.0.0 Ok: queued as 4F3A2C0D1"), or -1 (result: why, with the
 * server's reply when there was one). */
int smtp_send(const struct smtp_message *m, char *result, size_t rlen);

#endif
