/*
 * runuser - the user "mailjail run" works as, and what that user must be
 * able to do with the files of the configuration.
 *
 * Started as root, run drops to [mailjail] user (privdrop.h) before it
 * opens the database, the maps or the logs, so root never opens a name in
 * the run user's directories.  Started as anyone else, it runs as that user
 * (the unit starts it as user mailjail directly).  Whatever the run user
 * cannot do (create the database's files, rewrite a map, read a log) would
 * otherwise fail hours later, at the first hold: runuser_check tests it at
 * start and in check-config, as that user sees it -- a child process that
 * takes the user's uid, gid and groups and asks access(2).
 *
 * State files: the database with its -wal, -shm and -journal, and the files
 * of the maps the jails write (sqlite: the file, its -journal and the .cf;
 * hash: the text, its .db and .expires).  Before the check, a root start
 * hands over to the run user those root made (safefile_give: an operator
 * command run as root before the first start creates the database), and
 * refuses a symbolic link or any other non-regular file under those names.
 *
 * Memory: struct runuser is plain data; diagnostics go into the caller's
 * struct diag.
 */
#ifndef MAILJAIL_RUNUSER_H
#define MAILJAIL_RUNUSER_H

#include <stdbool.h>
#include <sys/types.h>

#include "cfgfile.h"
#include "config.h"

struct runuser {
	char name[64];
	uid_t uid;
	gid_t gid;
	bool drop;      /* running as root, and the run user is not root */
};

/* Who run works as: cfg->user when running as root, else the current user.
 * Returns 0, or -1 with a diag (no such user). */
int runuser_lookup(const struct config *cfg, struct runuser *u, struct diag *d);

/*
 * Hand root's state files over (change false: only see which would be, for
 * check-config), then check as u that it can create files in the
 * database's directory and in each map's (actions: the ACTION_* bits of the
 * jails; 0 for a dry run, which writes no map) and in the directory of the
 * [metrics] textfile (replaced by a rename), write the state files that
 * are written in place, run the [notify] command (execute it, and read it
 * if it is a #! script), and read each file log and its directory (a log,
 * or a directory, that does not exist yet is waited for).  Journal sources are not files: the daemon
 * warns about those after the drop (journal.h).
 * Returns 0, or -1 with one diag per problem, each naming the path and the
 * user.
 */
int runuser_check(const struct runuser *u, const struct config *cfg, const char *db,
    unsigned actions, bool change, struct diag *d);

#endif
