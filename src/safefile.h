/*
 * safefile - what a process running as root does with a name in a
 * directory that someone else (the daemon's run user) may write.
 *
 * SECURITY: the last component is never followed if it is a symbolic link
 * (O_NOFOLLOW; O_PATH to look at a name without opening what it is), only
 * regular files with one link are used (a hard link would let root change a
 * file the name does not belong to), ownership is changed only through an
 * open descriptor (fchown), and a name that does not exist is never
 * created unless the caller says so.  Every refusal is one message naming
 * the path, in the caller's err buffer.
 *
 * Memory: nothing is kept; descriptors returned are the caller's.
 */
#ifndef MAILJAIL_SAFEFILE_H
#define MAILJAIL_SAFEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* "a symbolic link", "a directory", "a FIFO"... for messages. */
const char *safefile_type(mode_t mode);

/*
 * Open path to append to it, creating it (mode) if missing: never through
 * a symbolic link, refused unless it is a regular file with one link.
 * *created (may be NULL) says whether this call made it.  Returns the
 * descriptor (O_CLOEXEC), or -1 with the reason in err.
 */
int safefile_open_append(const char *path, mode_t mode, bool *created,
    char *err, size_t errlen);

/*
 * Hand path over to uid:gid if root owns it: a file root made in the run
 * user's directory (an operator command run as root before the daemon's
 * first start creates the database there) that the run user must write.
 * Only a regular file with one link, only inside a directory uid owns (an
 * intermediate directory of path swapped for a symbolic link cannot lead
 * into someone else's directory), and only through a descriptor.  Missing,
 * already uid's, owned by someone else, or in a directory uid does not own:
 * left alone (whether uid can write it is checked as uid: runuser.h).
 * Returns 1 handed over, 0 left alone, -1 refused (not a regular file, or
 * root's with several links) with the reason in err.  change false: only
 * say what would be done (check-config).
 */
int safefile_give(const char *path, uid_t uid, gid_t gid, bool change, char *err,
    size_t errlen);

#endif
