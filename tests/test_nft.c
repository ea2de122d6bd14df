/*
 * test_nft - the nft module against the real kernel, each test in a network
 * namespace of its own (never the host's ruleset), read back with nft(8).
 * If no namespace can be made, the tests fail loudly.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nft.h"
#include "testutil.h"

static void
enter_netns(void)
{
	cr_assert_eq(geteuid(), 0, "the nftables tests need root (CI runs as root)");
	if (unshare(CLONE_NEWNET) != 0)
		cr_assert_fail("cannot create a network namespace (%s): this machine cannot "
		    "run the nftables tests", strerror(errno));
	cr_assert_eq(tu_sh("ip link set lo up"), 0);
}

TestSuite(nft, .init = enter_netns, .timeout = 60);

static struct nft *
open_default(uint16_t port)
{
	struct nft_options o = { "mailjail", "banned_ipv4", "banned_ipv6", "input",
	    { 25, 465, 587 }, 3 };
	struct nft *n;
	char err[512];

	if (port) {
		o.ports[0] = port;
		o.nports = 1;
	}
	cr_assert_eq(nft_open(&n, &o, err, sizeof(err)), 0, "nft_open: %s", err);
	return n;
}

static int
count(const char *cmd)
{
	char *out = tu_sh_output("%s", cmd);
	int n = atoi(out);

	free(out);
	return n;
}

Test(nft, table_creation_is_idempotent)
{
	struct nft *a = open_default(0), *b;
	char *out;

	nft_close(a);
	b = open_default(0);
	nft_close(b);
	cr_assert_eq(count("nft list tables | grep -c 'inet mailjail'"), 1);
	out = tu_sh_output("nft list table inet mailjail");
	cr_assert(strstr(out, "type ipv4_addr") && strstr(out, "type ipv6_addr"), "%s", out);
	cr_assert(strstr(out, "flags interval,timeout") || strstr(out, "flags timeout,interval"),
	    "%s", out);
	cr_assert(strstr(out, "hook input priority") != NULL, "%s", out);
	free(out);
	cr_assert_eq(count("nft list chain inet mailjail input | grep -c drop"), 12,
	    "3 ports x 2 families x addresses and prefixes, not duplicated by the second open");
	cr_assert_eq(count("nft list chain inet mailjail input | grep -c '@banned_ipv6_net'"), 3);
}

Test(nft, elements_with_timeouts_present_and_expiring)
{
	struct nft *n = open_default(0);
	char *out;

	cr_assert_eq(nft_ban(n, "192.0.2.7", 3600 * 1000), 0);
	cr_assert_eq(nft_ban(n, "2001:db8::bad", 3600 * 1000), 0);
	cr_assert_eq(nft_ban(n, "198.51.100.0/24", 3600 * 1000), 0);
	cr_assert_eq(nft_ban(n, "2001:db8:1::/64", 3600 * 1000), 0);
	cr_assert_eq(nft_ban(n, "203.0.113.1", 1000), 0);
	cr_assert_eq(nft_commit(n), 0);
	out = tu_sh_output("nft list set inet mailjail banned_ipv4; "
	    "nft list set inet mailjail banned_ipv6");
	cr_assert(strstr(out, "192.0.2.7 timeout 1h") != NULL, "%s", out);
	cr_assert(strstr(out, "2001:db8::bad timeout 1h") != NULL, "%s", out);
	cr_assert(strstr(out, "203.0.113.1 timeout 1s") != NULL, "%s", out);
	cr_assert(strstr(out, "/") == NULL, "no prefix among the addresses: %s", out);
	free(out);
	out = tu_sh_output("nft list set inet mailjail banned_ipv4_net; "
	    "nft list set inet mailjail banned_ipv6_net");
	cr_assert(strstr(out, "198.51.100.0/24 timeout 1h") != NULL, "%s", out);
	cr_assert(strstr(out, "2001:db8:1::/64 timeout 1h") != NULL, "%s", out);
	free(out);
	cr_assert_eq(nft_has(n, "198.51.100.77"), 1, "inside the banned prefix");
	cr_assert_eq(nft_has(n, "198.51.101.1"), 0);
	usleep(2500000);
	cr_assert_eq(nft_has(n, "203.0.113.1"), 0, "the kernel lifted it");
	cr_assert_eq(nft_has(n, "192.0.2.7"), 1);
	nft_close(n);
}

/* The kernel refuses an interval that overlaps another of its set: an
 * address banned by one jail and its /64 by another (sasl-bruteforce and
 * sasl-bruteforce-v6) must both be in force, each with its own time, in
 * either order, and lifting one leaves the other. */
Test(nft, an_address_and_its_prefix_are_banned_side_by_side)
{
	struct nft *n = open_default(0);
	char *out;

	cr_assert_eq(nft_ban(n, "2001:db8:5::7", 3600 * 1000), 0);
	cr_assert_eq(nft_ban(n, "192.0.2.7", 3600 * 1000), 0);
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_eq(nft_ban(n, "2001:db8:5::/64", 600 * 1000), 0);
	cr_assert_eq(nft_ban(n, "192.0.2.0/24", 600 * 1000), 0);
	cr_assert_eq(nft_commit(n), 0, "the prefixes are not refused");
	cr_assert_eq(nft_ban(n, "2001:db8:5::9", 7200 * 1000), 0);
	cr_assert_eq(nft_commit(n), 0, "nor an address inside a banned prefix");
	out = tu_sh_output("nft list table inet mailjail");
	cr_assert(strstr(out, "2001:db8:5::7 timeout 1h") != NULL, "%s", out);
	cr_assert(strstr(out, "2001:db8:5::9 timeout 2h") != NULL, "%s", out);
	cr_assert(strstr(out, "2001:db8:5::/64 timeout 10m") != NULL, "%s", out);
	cr_assert(strstr(out, "192.0.2.0/24 timeout 10m") != NULL, "%s", out);
	free(out);
	cr_assert_eq(nft_has(n, "2001:db8:5::1234"), 1, "the /64 drops its other addresses");
	cr_assert_eq(nft_has(n, "192.0.2.200"), 1);
	cr_assert_eq(nft_unban(n, "2001:db8:5::/64"), 0);
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_eq(nft_has(n, "2001:db8:5::1234"), 0, "the /64 lifted");
	cr_assert_eq(nft_has(n, "2001:db8:5::7"), 1, "its address's own ban stays");
	cr_assert_eq(nft_has(n, "2001:db8:5::9"), 1);
	cr_assert_eq(nft_unban(n, "192.0.2.7"), 0);
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_eq(nft_has(n, "192.0.2.7"), 1, "the /24 still drops it");
	cr_assert_eq(nft_has(n, "192.0.2.0/24"), 1);
	nft_close(n);
}

Test(nft, reban_takes_the_new_timeout_and_unban_removes)
{
	struct nft *n = open_default(0);
	char *out;

	cr_assert_eq(nft_ban(n, "192.0.2.9", 60 * 1000), 0);
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_eq(nft_ban(n, "192.0.2.9", 7 * 86400 * 1000ULL), 0);
	cr_assert_eq(nft_commit(n), 0);
	out = tu_sh_output("nft list set inet mailjail banned_ipv4");
	cr_assert(strstr(out, "192.0.2.9 timeout 7d") != NULL, "recidive-style re-ban: %s", out);
	free(out);
	cr_assert_eq(nft_unban(n, "192.0.2.9"), 0);
	cr_assert_eq(nft_unban(n, "192.0.2.10"), 0, "not banned: no error");
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_eq(nft_has(n, "192.0.2.9"), 0);
	nft_close(n);
}

Test(nft, malformed_addresses_never_reach_the_kernel)
{
	struct nft *n = open_default(0);
	const char *bad[] = { "300.1.2.3", "1.2.3.4/33", "::1/129", "1.2.3.4 ", "",
	    "1.2.3.4;drop", "1.2.3.4/0", "fe80::1%eth0", "1.2.3.4/", "x" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(nft_ban(n, bad[i], 1000), -1, "accepted \"%s\"", bad[i]);
	cr_assert_eq(nft_commit(n), 0, "nothing queued");
	cr_assert_eq(count("nft list set inet mailjail banned_ipv4 | grep -c elements"), 0);
	nft_close(n);
}

Test(nft, foreign_layout_is_an_error_not_a_flush)
{
	struct nft_options o = { "mailjail", "banned_ipv4", "banned_ipv6", "input", { 25 }, 1 };
	struct nft *n;
	char err[512];

	cr_assert_eq(tu_sh("nft add table inet mailjail && nft add set inet mailjail "
	    "banned_ipv4 '{ type ipv6_addr; }' && nft add element inet mailjail banned_ipv4 "
	    "'{ ::1 }'"), 0);
	cr_assert_eq(nft_open(&n, &o, err, sizeof(err)), -1);
	cr_assert(strstr(err, "not ours") != NULL, "%s", err);
	cr_assert_eq(count("nft list set inet mailjail banned_ipv4 | grep -c '::1'"), 1,
	    "left alone");
}

Test(nft, restore_after_flush_ruleset)
{
	struct nft *n = open_default(0);
	char err[512];

	cr_assert_eq(nft_ban(n, "192.0.2.20", 3600 * 1000), 0);
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_eq(nft_check(n), 1);
	cr_assert_eq(tu_sh("nft flush ruleset"), 0);
	cr_assert_eq(nft_check(n), 0, "noticed");
	cr_assert_eq(nft_setup(n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(nft_ban(n, "192.0.2.20", 3600 * 1000), 0);
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_eq(nft_check(n), 1);
	cr_assert_eq(nft_has(n, "192.0.2.20"), 1);
	nft_close(n);
}

Test(nft, batch_of_100000_elements)
{
	struct nft *n = open_default(0);
	struct timespec t0, t1;
	char ip[32];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		cr_assert_eq(nft_ban(n, ip, 3600 * 1000), 0);
	}
	cr_assert_eq(nft_commit(n), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "[info] 100000 elements in %.0f ms (measured, not asserted)\n",
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	cr_assert_eq(nft_has(n, "10.0.0.0"), 1);
	cr_assert_eq(nft_has(n, "10.1.134.159"), 1, "the last one");
	cr_assert_eq(nft_has(n, "10.1.134.160"), 0);
	cr_assert_eq(count("nft -j list set inet mailjail banned_ipv4 | python3 -c "
	    "'import json,sys; d=json.load(sys.stdin); print(sum(len(x[\"set\"].get(\"elem\", [])) "
	    "for x in d[\"nftables\"] if \"set\" in x))'"), 100000);
	nft_close(n);
}

/* connect_from - TCP connect from src to 127.0.0.1:port within 1 s */
static bool
connect_from(const char *src, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	bool ok = false;

	cr_assert_geq(fd, 0);
	inet_pton(AF_INET, src, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
	b.sin_port = htons((uint16_t)port);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (connect(fd, (struct sockaddr *)&b, sizeof(b)) == 0)
		ok = true;
	else if (errno == EINPROGRESS && poll(&p, 1, 1000) == 1 &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
		ok = true;
	close(fd);
	return ok;
}

static int
listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	a.sin_port = htons((uint16_t)port);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	return fd;
}

Test(nft, drop_rule_drops_a_banned_source_only)
{
	struct nft *n = open_default(0);
	int l587 = listen_on(587), l8080 = listen_on(8080);

	cr_assert(connect_from("127.0.0.5", 587), "before the ban");
	cr_assert_eq(nft_ban(n, "127.0.0.5", 60 * 1000), 0);
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_not(connect_from("127.0.0.5", 587), "banned source to a mail port: dropped");
	cr_assert(connect_from("127.0.0.6", 587), "another source still gets through");
	cr_assert(connect_from("127.0.0.5", 8080), "ports not configured stay open");
	close(l587);
	close(l8080);
	nft_close(n);
}

Test(nft, ports_all_drops_everything_from_a_banned_source)
{
	struct nft_options o = { "mailjail", "banned_ipv4", "banned_ipv6", "input", { 0 }, 0 };
	struct nft *n;
	char err[512];
	int l = listen_on(8080);

	cr_assert_eq(nft_open(&n, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(nft_ban(n, "127.0.0.5", 60 * 1000), 0);
	cr_assert_eq(nft_commit(n), 0);
	cr_assert_not(connect_from("127.0.0.5", 8080));
	cr_assert(connect_from("127.0.0.6", 8080));
	close(l);
	nft_close(n);
}
