/*
 * fleet - fleet propagation: from the moment a ban is committed on node A
 * to the moment it is an element of node B's kernel set.  Node B is a
 * "mailjail run" started here, in this network namespace (bench/run runs
 * this under unshare -n); node A is this program, writing each ban with
 * the store as node A's pipeline does (store_add_ban, store_commit).
 * Both use the PostgreSQL database at URI.
 *
 *   fleet MAILJAIL SRCDIR OUTDIR URI N
 *
 * The bans come one at a time, 0 to 100 ms apart (fixed seed), as verdicts
 * do in life.  Prints one summary line.
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
#include "store.h"

/* start_node_b - the daemon of node B, following an empty log */
static pid_t
start_node_b(const char *mj, const char *src, const char *out, const char *uri)
{
	char cfg[4096], jail[4096], log[4096], errlog[4200], cmd[8400];
	FILE *fp;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/fleet.log", out);
	snprintf(jail, sizeof(jail), "%s/fleet.jail", out);
	snprintf(cfg, sizeof(cfg), "%s/fleet.conf", out);
	snprintf(errlog, sizeof(errlog), "%s/fleet.err", out);
	snprintf(cmd, sizeof(cmd), ": > '%s'; : > '%s'", log, errlog);
	if (system(cmd) != 0 || (fp = fopen(jail, "w")) == NULL)
		return -1;
	fprintf(fp, "[bench]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 5\n"
	    "action = nft\nbantime = 1h\n");
	fclose(fp);
	if ((fp = fopen(cfg, "w")) == NULL)
		return -1;
	fprintf(fp, "[mailjail]\nlog = %s\ndb = %s\nnode = node-b\nrules = %s/rules\n"
	    "jails = %s\nuser = root\n", log, uri, src, jail);
	fclose(fp);
	if ((pid = fork()) == 0) {
		if (freopen(errlog, "w", stderr) == NULL)
			_exit(1);
		execl(mj, "mailjail", "run", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

int
main(int argc, char **argv)
{
	struct nft_options o = { "mailjail", "banned_ipv4", "banned_ipv6", "input",
	    { 25, 465, 587 }, 3 };
	struct nft *n = NULL;
	struct store *st = NULL;
	char err[512];
	double *lat;
	pid_t pid;
	int count;

	if (argc != 6 || (count = atoi(argv[5])) <= 0) {
		fprintf(stderr, "usage: fleet MAILJAIL SRCDIR OUTDIR URI N\n");
		return 2;
	}
	if (system("ip link set lo up") != 0)
		return 1;
	if (store_open(argv[4], true, &st, err, sizeof(err)) != 0 ||
	    store_set_node(st, "node-a") != 0) {
		fprintf(stderr, "fleet: %s\n", err);
		return 1;
	}
	if ((pid = start_node_b(argv[1], argv[2], argv[3], argv[4])) < 0)
		return 1;
	for (int i = 0; i < 200 && n == NULL; i++) {
		usleep(50000);
		if (system("nft list table inet mailjail >/dev/null 2>&1") == 0 &&
		    nft_open(&n, &o, err, sizeof(err)) != 0)
			n = NULL;
	}
	if (n == NULL) {
		fprintf(stderr, "fleet: node B did not set up its table\n");
		kill(pid, SIGTERM);
		return 1;
	}
	usleep(500000);   /* node B settles into its wait */
	if ((lat = calloc((size_t)count, sizeof(*lat))) == NULL)
		return 1;
	srand(16);
	for (int i = 0; i < count; i++) {
		struct verdict v;
		double t0;

		memset(&v, 0, sizeof(v));
		v.jail = "bench";
		v.kind = TARGET_IP;
		snprintf(v.target, sizeof(v.target), "10.%d.%d.%d", 200 + i / 62500,
		    (i / 250) % 250, i % 250 + 1);
		v.level = 1;
		v.actions = ACTION_NFT;
		v.started_at = (int64_t)time(NULL);
		v.expires_at = v.started_at + 3600;
		snprintf(v.reason, sizeof(v.reason), "bench");
		if (store_begin(st) != 0 || store_add_ban(st, &v, NULL) != 0 ||
		    store_commit(st) != 0) {
			fprintf(stderr, "fleet: %s\n", store_errmsg(st));
			kill(pid, SIGTERM);
			return 1;
		}
		t0 = bench_now_ms();   /* committed on node A */
		if ((lat[i] = bench_wait_in_set(n, v.target, t0, 5000, "fleet")) < 0) {
			kill(pid, SIGTERM);
			return 1;
		}
		usleep((useconds_t)(rand() % 100) * 1000);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	{
		char what[160];

		snprintf(what, sizeof(what), "fleet propagation over %d bans (committed on node A "
		    "-> element in node B's nft set)", count);
		bench_print_latencies(what, lat, count, 1);
	}
	free(lat);
	nft_close(n);
	store_close(st);
	return 0;
}
