/*
 * test_unpack - the decoders against the real gzip, xz and bzip2 tools:
 * concatenated members, trailing padding, corrupt and truncated data.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "unpack.h"

static char dir[256];

static void setup(void) { tu_mkdtemp(dir, sizeof(dir)); }
static void teardown(void) { tu_rmrf(dir); }
TestSuite(unpack, .init = setup, .fini = teardown);

/* decode - the whole of dir/name through unpack; malloc'd text, or NULL on
 * a decoding error (its message in err) */
static char *
decode(const char *name, enum unpack_format want, char *err, size_t errlen)
{
	char path[512], *out = NULL;
	unsigned char head[UNPACK_MAGIC_MAX];
	struct unpack *u;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_geq(fd = open(path, O_RDONLY), 0);
	n = read(fd, head, sizeof(head));
	cr_assert_eq(unpack_sniff(head, (size_t)n, NULL), want, "%s", name);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_eq(unpack_open(&u, fd, want), 0);
	for (;;) {
		if (cap - len < 1000) {
			cap = cap ? cap * 2 : 4096;
			cr_assert_not_null(out = realloc(out, cap + 1));
		}
		/* small reads: members must join across calls */
		if ((n = unpack_read(u, out + len, 999)) < 0) {
			snprintf(err, errlen, "%s", unpack_error(u));
			free(out);
			out = NULL;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (out)
		out[len] = '\0';
	unpack_close(u);
	close(fd);
	return out;
}

static void
sh(const char *cmd)
{
	cr_assert_eq(tu_sh("cd '%s' && %s", dir, cmd), 0, "%s", cmd);
}

Test(unpack, sniffs_by_content)
{
	const char *name;

	cr_assert_eq(unpack_sniff((const unsigned char *)"\x1f\x8b\x08", 3, NULL), UNPACK_GZIP);
	cr_assert_eq(unpack_sniff((const unsigned char *)"\xfd" "7zXZ\0", 6, NULL), UNPACK_XZ);
	cr_assert_eq(unpack_sniff((const unsigned char *)"BZh9", 4, NULL), UNPACK_BZIP2);
	cr_assert_eq(unpack_sniff((const unsigned char *)"BZh: a text", 11, NULL), UNPACK_PLAIN);
	cr_assert_eq(unpack_sniff((const unsigned char *)"Nov 22 10:00:01", 15, NULL), UNPACK_PLAIN);
	cr_assert_eq(unpack_sniff((const unsigned char *)"\x28\xb5\x2f\xfd", 4, &name), UNPACK_FOREIGN);
	cr_assert_str_eq(name, "zstd");
	cr_assert_eq(unpack_sniff((const unsigned char *)"\x1f", 1, NULL), UNPACK_PLAIN);
}

Test(unpack, concatenated_members_and_streams_read_whole)
{
	char err[200], *t;
	const char *want = "one\ntwo\nthree\n";

	sh("printf 'one\\n' > a && printf 'two\\n' > b && printf 'three\\n' > c");
	sh("gzip -c a > x.gz && gzip -c b >> x.gz && gzip -c c >> x.gz");
	sh("bzip2 -c a > x.bz2 && bzip2 -c b >> x.bz2 && bzip2 -c c >> x.bz2");
	sh("xz -c a > x.xz && xz -c b >> x.xz && xz -c c >> x.xz");
	cr_assert_not_null(t = decode("x.gz", UNPACK_GZIP, err, sizeof(err)), "%s", err);
	cr_assert_str_eq(t, want);
	free(t);
	cr_assert_not_null(t = decode("x.bz2", UNPACK_BZIP2, err, sizeof(err)), "%s", err);
	cr_assert_str_eq(t, want);
	free(t);
	cr_assert_not_null(t = decode("x.xz", UNPACK_XZ, err, sizeof(err)), "%s", err);
	cr_assert_str_eq(t, want);
	free(t);
}

Test(unpack, large_data_and_zero_padding)
{
	char err[200], *t, *ref;

	sh("seq 1 200000 > big && gzip -c big > big.gz && head -c 512 /dev/zero >> big.gz");
	ref = tu_sh_output("cat '%s/big'", dir);
	cr_assert_not_null(t = decode("big.gz", UNPACK_GZIP, err, sizeof(err)), "%s", err);
	cr_assert_str_eq(t, ref, "padding after the last member is not data");
	free(t);
	free(ref);
}

Test(unpack, corrupt_and_truncated_data_are_errors)
{
	char err[200];

	sh("seq 1 50000 > big && gzip -c big > g.gz && xz -c big > x.xz && bzip2 -c big > b.bz2");
	sh("head -c 20000 g.gz > g-cut.gz && head -c 9000 x.xz > x-cut.xz && head -c 20000 b.bz2 > b-cut.bz2");
	cr_assert_null(decode("g-cut.gz", UNPACK_GZIP, err, sizeof(err)));
	cr_assert(strstr(err, "truncated") != NULL, "%s", err);
	cr_assert_null(decode("x-cut.xz", UNPACK_XZ, err, sizeof(err)));
	cr_assert(strstr(err, "truncated") != NULL, "%s", err);
	cr_assert_null(decode("b-cut.bz2", UNPACK_BZIP2, err, sizeof(err)));
	cr_assert(strstr(err, "truncated") != NULL, "%s", err);
	/* a flipped byte in the middle of the deflate data */
	sh("cp g.gz bad.gz && printf '\\377\\377\\377\\377' | dd of=bad.gz bs=1 seek=5000 conv=notrunc 2>/dev/null");
	cr_assert_null(decode("bad.gz", UNPACK_GZIP, err, sizeof(err)));
	cr_assert(strstr(err, "gzip data: ") == err, "%s", err);
}
