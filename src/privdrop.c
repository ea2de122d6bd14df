/*
 * privdrop - see privdrop.h.  libcap-ng does the capability work.
 */
#include "privdrop.h"

#include <cap-ng.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* verify - read back what the kernel says we are now */
static int
verify(uid_t uid, char *err, size_t errlen)
{
	char line[256];
	unsigned long long eff = ~0ULL, prm = ~0ULL;
	int nnp = -1;
	FILE *fp = fopen("/proc/self/status", "re");

	if (fp == NULL) {
		snprintf(err, errlen, "/proc/self/status: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "CapEff: %llx", &eff) == 1 ||
		    sscanf(line, "CapPrm: %llx", &prm) == 1 ||
		    sscanf(line, "NoNewPrivs: %d", &nnp) == 1)
			continue;
	}
	fclose(fp);
	if (getuid() != uid || geteuid() != uid) {
		snprintf(err, errlen, "uid is still %d", (int)geteuid());
		return -1;
	}
	if (eff != (1ULL << CAP_NET_ADMIN) || prm != (1ULL << CAP_NET_ADMIN)) {
		snprintf(err, errlen, "capabilities are %llx/%llx, expected only CAP_NET_ADMIN",
		    eff, prm);
		return -1;
	}
	if (nnp != 1) {
		snprintf(err, errlen, "no_new_privs is not set");
		return -1;
	}
	return 0;
}

int
privdrop(const char *user, char *err, size_t errlen)
{
	struct passwd *pw;
	int rc;

	if (geteuid() != 0)
		return 0;
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user \"%s\": %s (create it, or set [mailjail] user)",
		    user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN) != 0) {
		snprintf(err, errlen, "capng_update failed");
		return -1;
	}
	if (pw->pw_uid == 0) {
		rc = capng_apply(CAPNG_SELECT_BOTH);
	} else {
		/* Sets gid, the user's groups, uid; keeps the capabilities above
		 * across the change and clears the bounding set. */
		rc = capng_change_id((int)pw->pw_uid, (int)pw->pw_gid,
		    CAPNG_INIT_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot change to user %s with only CAP_NET_ADMIN "
		    "(libcap-ng error %d)", user, rc);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	return verify(pw->pw_uid, err, errlen);
}
