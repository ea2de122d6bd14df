/*
 * safefile - names in directories someone else may write.  See safefile.h.
 */
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
safefile_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "a regular file";
	case S_IFLNK: return "a symbolic link";
	case S_IFDIR: return "a directory";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	default: return "not a regular file";
	}
}

/* refuse_type - the message for a name that is not a regular file */
static void
refuse_type(const char *path, mode_t mode, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: is %s, not a regular file: refused (root never "
	    "follows or opens such a name; remove it)", path, safefile_type(mode));
}

int
safefile_open_append(const char *path, mode_t mode, bool *created, char *err,
    size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO for writing would wait for a reader. */
	const int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC |
	    O_NONBLOCK;
	struct stat st;
	bool made = false;
	int fd;

	/* O_EXCL never follows a symbolic link, dangling or not. */
	if ((fd = open(path, flags | O_CREAT | O_EXCL, mode)) >= 0)
		made = true;
	else if (errno == EEXIST)
		fd = open(path, flags);
	if (fd < 0) {
		int e = errno;

		/* Say what the name is rather than ELOOP or ENXIO. */
		if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
			refuse_type(path, st.st_mode, err, errlen);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		refuse_type(path, st.st_mode, err, errlen);
		goto fail;
	}
	if (st.st_nlink != 1) {
		snprintf(err, errlen, "%s: has %ju hard links: refused (it may be "
		    "another file's name)", path, (uintmax_t)st.st_nlink);
		goto fail;
	}
	if (fcntl(fd, F_SETFL, O_APPEND) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (created)
		*created = made;
	return fd;
fail:
	(void)close(fd);
	return -1;
}

int
safefile_give(const char *path, uid_t uid, gid_t gid, bool change, char *err,
    size_t errlen)
{
	char dir[4096];
	const char *slash = strrchr(path, '/'), *base;
	struct stat st, dst;
	int dfd = -1, fd = -1, rc = -1;

	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
		base = path;
	} else {
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path),
		    path);
		base = slash + 1;
	}
	if ((dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			rc = 0;
			goto out;
		}
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	/* O_PATH | O_NOFOLLOW: the name itself, whatever it is, not opened. */
	if ((fd = openat(dfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			rc = 0;
			goto out;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || fstat(dfd, &dst) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		refuse_type(path, st.st_mode, err, errlen);
		goto out;
	}
	if (st.st_uid != 0 || st.st_uid == uid || dst.st_uid != uid) {
		rc = 0;
		goto out;
	}
	if (st.st_nlink != 1) {
		snprintf(err, errlen, "%s: owned by root, with %ju hard links: refused "
		    "(it may be another file's name)", path, (uintmax_t)st.st_nlink);
		goto out;
	}
	if (change && fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0) {
		snprintf(err, errlen, "%s: giving it to uid %u: %s", path, (unsigned)uid,
		    strerror(errno));
		goto out;
	}
	rc = 1;
out:
	if (fd >= 0)
		(void)close(fd);
	if (dfd >= 0)
		(void)close(dfd);
	return rc;
}
