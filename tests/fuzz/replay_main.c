/*
 * replay_main - runs a libFuzzer harness over files, without libFuzzer: the
 * regression corpus (tests/fuzz/regress/, every input that once crashed or
 * is known to be nasty) and the shipped configuration go through the same
 * LLVMFuzzerTestOneInput in the normal ASan/UBSan build, so `meson test`
 * replays them even where clang is missing.  Arguments: files or
 * directories (their regular files, not recursive).  Exit 0 if every input
 * ran; a crash or a sanitizer report aborts.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* run_file - one input; -1 if it cannot be read */
static int
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (fp == NULL) {
		perror(path);
		return -1;
	}
	do {
		if (len == cap) {
			uint8_t *nb = realloc(buf, (cap = cap ? cap * 2 : 65536));
			if (nb == NULL) {
				free(buf);
				fclose(fp);
				return -1;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
	} while (n > 0);
	fclose(fp);
	/* libFuzzer hands over exactly len bytes: a copy of that size lets
	 * ASan catch a read past the end. */
	{
		uint8_t *exact = malloc(len ? len : 1);
		if (exact == NULL) {
			free(buf);
			return -1;
		}
		memcpy(exact, buf, len);
		free(buf);
		(void)LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	size_t done = 0, bad = 0;

	if (LLVMFuzzerInitialize)
		(void)LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;

		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			bad++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) == 0)
				done++;
			else
				bad++;
			continue;
		}
		if ((d = opendir(argv[i])) == NULL) {
			perror(argv[i]);
			bad++;
			continue;
		}
		while ((e = readdir(d)) != NULL) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			if (run_file(path) == 0)
				done++;
			else
				bad++;
		}
		closedir(d);
	}
	printf("%zu passed, %zu failed\n", done, bad);
	return bad == 0 && done > 0 ? 0 : 1;
}
