/*
 * privdrop - after start-up, run as an unprivileged user keeping only
 * CAP_NET_ADMIN (for netlink to nftables), with no_new_privs.
 *
 * Order (OpenBSD/Postfix habit): resolve the user, set capabilities to keep
 * across the uid change, change gid, supplementary groups (the user's own:
 * e.g. "adm" to read /var/log/mail.log after rotation), uid, then
 * no_new_privs, then verify from /proc/self/status.  Every step is checked
 * and any failure is returned: the caller treats it as fatal (fail closed).
 *
 * user "root" keeps uid 0 but still drops every capability except
 * CAP_NET_ADMIN.  Not running as root: nothing to drop, returns 0 (the
 * shipped unit starts the daemon as its user with CAP_NET_ADMIN already).
 *
 * The daemon calls it before it opens anything in the run user's
 * directories (the database, the maps, the logs): see runuser.h.
 */
#ifndef MAILJAIL_PRIVDROP_H
#define MAILJAIL_PRIVDROP_H

#include <stddef.h>

int privdrop(const char *user, char *err, size_t errlen);

#endif
