/*
 * fuzz_config - libFuzzer harness for the configuration parsers: the input
 * is written to a file and read as a rules file, a jail file and a
 * mailjail.conf.  Errors are expected; crashes, leaks and hangs are not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "jail.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct ruleset *rs = NULL;
	struct jailset *js = NULL;
	struct config cfg;
	struct diag d;
	FILE *fp;

	snprintf(path, sizeof(path), "/dev/shm/mailjail-fuzz-%d.conf", (int)getpid());
	if ((fp = fopen(path, "w")) == NULL)
		return 0;
	/* Ours alone whatever the umask, or the parsers refuse it unread
	 * (cfgfile.h, SECURITY). */
	if (fchmod(fileno(fp), 0600) != 0) {
		fclose(fp);
		unlink(path);
		return 0;
	}
	fwrite(data, 1, size, fp);
	fclose(fp);
	diag_init(&d);
	if (rules_load(path, &rs, &d) == 0)
		rules_free(rs);
	if (jails_load(path, &js, &d) == 0)
		jails_free(js);
	if (config_load(path, &cfg, &d) == 0)
		config_free(&cfg);
	else
		config_free(&cfg);
	diag_free(&d);
	unlink(path);
	return 0;
}
