/*
 * latency - ban latency of "mailjail run": from the moment the lines that
 * cross a jail's threshold are appended to the log, to the moment the
 * address is in the kernel's nft set.  Run it inside a private network
 * namespace (bench/run does: unshare -n); it never touches another ruleset.
 *
 *   latency MAILJAIL SRCDIR OUTDIR N
 *
 * Prints one line per percentile and a summary line last.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "nft.h"

int
main(int argc, char **argv)
{
	char cfg[4096], log[4096], jail[4096], db[4096], err[512], cmd[16384];
	struct nft_options o = { "mailjail", "banned_ipv4", "banned_ipv6", "input",
	    { 25, 465, 587 }, 3 };
	struct nft *n = NULL;
	double *lat;
	FILE *fp;
	pid_t pid;
	int count;

	if (argc != 5 || (count = atoi(argv[4])) <= 0) {
		fprintf(stderr, "usage: latency MAILJAIL SRCDIR OUTDIR N\n");
		return 2;
	}
	if (system("ip link set lo up") != 0)
		return 1;
	snprintf(log, sizeof(log), "%s/latency.log", argv[3]);
	snprintf(jail, sizeof(jail), "%s/latency.jail", argv[3]);
	snprintf(db, sizeof(db), "%s/latency.db", argv[3]);
	snprintf(cfg, sizeof(cfg), "%s/latency.conf", argv[3]);
	snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s'-*; : > '%s'", db, db, log);
	if (system(cmd) != 0)
		return 1;
	if ((fp = fopen(jail, "w")) == NULL)
		return 1;
	fprintf(fp, "[bench]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 5\n"
	    "action = nft\nbantime = 1h\n");
	fclose(fp);
	if ((fp = fopen(cfg, "w")) == NULL)
		return 1;
	fprintf(fp, "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\njails = %s\nuser = root\n",
	    log, db, argv[2], jail);
	fclose(fp);

	if ((pid = fork()) == 0) {
		char errlog[4200];
		snprintf(errlog, sizeof(errlog), "%s/latency.err", argv[3]);
		if (freopen(errlog, "w", stderr) == NULL)
			_exit(1);
		execl(argv[1], "mailjail", "run", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	/* Wait for the daemon's table, then measure through our own socket. */
	for (int i = 0; i < 100 && n == NULL; i++) {
		usleep(50000);
		if (system("nft list table inet mailjail >/dev/null 2>&1") == 0 &&
		    nft_open(&n, &o, err, sizeof(err)) != 0)
			n = NULL;
	}
	if (n == NULL) {
		fprintf(stderr, "latency: mailjail did not set up its table\n");
		kill(pid, SIGTERM);
		return 1;
	}
	usleep(300000);   /* let it settle into its wait */
	if ((lat = calloc((size_t)count, sizeof(*lat))) == NULL)
		return 1;
	for (int i = 0; i < count; i++) {
		char ip[32], lines[2048], stamp[32];
		time_t t = time(NULL);
		size_t off = 0;
		double t0;
		int fd_ok;

		snprintf(ip, sizeof(ip), "10.%d.%d.%d", 100 + i / 62500, (i / 250) % 250, i % 250 + 1);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&t));
		for (int k = 0; k < 5; k++)
			off += (size_t)snprintf(lines + off, sizeof(lines) - off,
			    "%s mx postfix/submission/smtpd[9]: warning: unknown[%s]: SASL LOGIN "
			    "authentication failed: UGFzc3dvcmQ6\n", stamp, ip);
		if ((fp = fopen(log, "a")) == NULL)
			return 1;
		setvbuf(fp, NULL, _IONBF, 0);
		t0 = bench_now_ms();
		fd_ok = fwrite(lines, 1, off, fp) == off;
		fclose(fp);
		if (!fd_ok)
			return 1;
		if ((lat[i] = bench_wait_in_set(n, ip, t0, 5000, "latency")) < 0) {
			kill(pid, SIGTERM);
			return 1;
		}
		usleep(2000);   /* bans arrive one at a time, as in life */
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	{
		char what[160];

		snprintf(what, sizeof(what), "ban latency over %d bans (line appended -> element "
		    "in the nft set)", count);
		bench_print_latencies(what, lat, count, 2);
	}
	free(lat);
	nft_close(n);
	return 0;
}
