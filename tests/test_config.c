/*
 * test_config - mailjail.conf keys, defaults and errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

Test(config, defaults_are_debian_paths)
{
	struct config c;

	cr_assert_eq(config_defaults(&c), 0);
	cr_assert_eq(c.nlogs, 1);
	cr_assert_str_eq(c.logs[0], "/var/log/mail.log");
	cr_assert_str_eq(c.db, "/var/lib/mailjail/mailjail.db");
	cr_assert_str_eq(c.nft_table, "mailjail");
	cr_assert_str_eq(c.nft_set_v4, "banned_ipv4");
	cr_assert_str_eq(c.nft_set_v6, "banned_ipv6");
	cr_assert_eq(c.nft_nports, 3);
	cr_assert_eq(c.nft_ports[0], 25);
	cr_assert_eq(c.nft_ports[1], 465);
	cr_assert_eq(c.nft_ports[2], 587);
	cr_assert_str_eq(c.hold_map, "sqlite:/var/lib/mailjail/hold.db");
	config_free(&c);
}

Test(config, keys_and_relative_paths)
{
	char dir[256], path[512], want[600];
	struct config c;
	struct diag d;

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "mailjail.conf",
	    "[mailjail]\n"
	    "log = /var/log/mail.log, other.log\n"
	    "db = state/mj.db\n"
	    "rules = rules\n"
	    "jails = /etc/x/jails\n"
	    "[nft]\n"
	    "table = mj\n"
	    "ports = all\n"
	    "[hold]\n"
	    "map = hash:/etc/postfix/mailjail_hold\n", path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(config_load(path, &c, &d), 0);
	cr_assert_eq(c.nlogs, 2);
	snprintf(want, sizeof(want), "%s/other.log", dir);
	cr_assert_str_eq(c.logs[1], want);
	snprintf(want, sizeof(want), "%s/state/mj.db", dir);
	cr_assert_str_eq(c.db, want);
	cr_assert_str_eq(c.jails, "/etc/x/jails");
	cr_assert_str_eq(c.nft_table, "mj");
	cr_assert_eq(c.nft_nports, 0, "all ports");
	cr_assert_str_eq(c.hold_map, "hash:/etc/postfix/mailjail_hold");
	config_free(&c);
	diag_free(&d);
	tu_rmrf(dir);
}

/* expect_error - the file gives exactly one diag, at line, mentioning what */
static void
expect_error(const char *text, int line, const char *what)
{
	char dir[256], path[512], want[600];
	struct config c;
	struct diag d;

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "mailjail.conf", text, path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(config_load(path, &c, &d), -1, "accepted: %s", text);
	cr_assert_geq(d.n, 1);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	cr_assert(strncmp(d.msgs[0], want, strlen(want)) == 0, "got \"%s\", want prefix \"%s\"",
	    d.msgs[0], want);
	cr_assert(strstr(d.msgs[0], what) != NULL, "\"%s\" lacks \"%s\"", d.msgs[0], what);
	config_free(&c);
	diag_free(&d);
	tu_rmrf(dir);
}

Test(config, errors_name_file_line_and_problem)
{
	expect_error("[mailjail]\nlgo = /x\n", 2, "unknown key \"lgo\"");
	expect_error("[mailjial]\nlog = /x\n", 2, "unknown section");
	expect_error("[nft]\nports = 25, smtp\n", 2, "bad port");
	expect_error("[nft]\nports = 70000\n", 2, "bad port");
	expect_error("[hold]\nmap = texthash:/etc/postfix/x\n", 2, "reload");
	expect_error("[hold]\nmap = btree:/etc/postfix/x\n", 2, "sqlite:");
	expect_error("[hold]\nmap = sqlite:relative.db\n", 2, "absolute");
	expect_error("[mailjail]\nlog = a,,b\n", 2, "empty log");
	expect_error("[mailjail]\ndb = /a\ndb = /b\n", 3, "twice");
	expect_error("[mailjail]\nbatch_lines = 0\n", 2, "number");
	expect_error("[mailjail]\nno equals sign here\n", 2, "syntax");
}

/* A fleet: db may be a PostgreSQL URI (kept as given, not made a path);
 * node names this host (default: the host name). */
Test(config, db_uri_and_node)
{
	char dir[256], path[512], host[256];
	struct config c;
	struct diag d;

	cr_assert_eq(config_defaults(&c), 0);
	cr_assert_eq(gethostname(host, sizeof(host)), 0);
	cr_assert_str_eq(c.node, host, "the host name by default");
	config_free(&c);

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "mailjail.conf", "[mailjail]\n"
	    "db = postgresql://mailjail@db.example.net/mailjail?sslmode=verify-full\n"
	    "node = mx1.example.net\n", path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(config_load(path, &c, &d), 0);
	cr_assert_str_eq(c.db, "postgresql://mailjail@db.example.net/mailjail?sslmode=verify-full");
	cr_assert_str_eq(c.node, "mx1.example.net");
	config_free(&c);
	diag_free(&d);

	tu_write(dir, "mailjail.conf", "[mailjail]\nnode = mx 1\n", path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(config_load(path, &c, &d), -1, "a blank in a node name");
	cr_assert_eq(d.n, 1);
	cr_assert(strstr(d.msgs[0], "[mailjail] node") != NULL, "%s", d.msgs[0]);
	config_free(&c);
	diag_free(&d);
	tu_rmrf(dir);
}
