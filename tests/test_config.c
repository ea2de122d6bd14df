/*
 * test_config - mailjail.conf keys, defaults and errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

Test(config, defaults_are_debian_paths)
{
	struct config c;

	cr_assert_eq(config_defaults(&c), 0);
	cr_assert_eq(c.nlogs, 1);
	/* log = auto, resolved on this machine (the auto tests below use a
	 * directory of their own). */
	cr_assert_eq(c.log_auto, 0);
	cr_assert_str_eq(c.log_auto_file, "/var/log/mail.log");
	cr_assert_str_eq(c.log_auto_journal, "journal:postfix@-.service");
	cr_assert_str_eq(c.logs[0], access("/var/log/mail.log", F_OK) == 0 ?
	    "/var/log/mail.log" : "journal:postfix@-.service");
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

/* load_auto - load dir/mailjail.conf with text; asserts it loads */
static void
load_auto(const char *dir, const char *text, struct config *c)
{
	char path[512];
	struct diag d;

	tu_write(dir, "mailjail.conf", text, path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(config_load(path, c, &d), 0, "%s", d.n ? d.msgs[0] : "");
	diag_free(&d);
}

Test(config, log_auto_is_the_file_if_it_exists_else_the_journal)
{
	char dir[256], want[600], why[1024], file[700];
	struct config c;
	/* dir stands in for /var/log: the probe path is a key, relative to
	 * the config file like every path. */
	const char *text = "[mailjail]\nlog = auto\nlog_auto_file = log/mail.log\n";

	tu_mkdtemp(dir, sizeof(dir));
	snprintf(want, sizeof(want), "%s/log/mail.log", dir);

	load_auto(dir, text, &c);
	cr_assert_eq(c.nlogs, 1);
	cr_assert_eq(c.log_auto, 0);
	cr_assert_str_eq(c.logs[0], "journal:postfix@-.service",
	    "no %s (not even its directory): Postfix's journal", want);
	cr_assert_eq(config_describe_log_auto(&c, why, sizeof(why)), 1);
	cr_assert(strstr(why, "log = auto: journal:postfix@-.service (no ") != NULL,
	    "%s", why);
	cr_assert(strstr(why, want) != NULL, "names the file it looked for: %s", why);
	config_free(&c);

	snprintf(file, sizeof(file), "%s/log", dir);
	cr_assert_eq(mkdir(file, 0755), 0);
	tu_write(file, "mail.log", "", why, sizeof(why));
	load_auto(dir, text, &c);
	cr_assert_str_eq(c.logs[0], want, "the file exists (empty): it is read");
	cr_assert_eq(config_describe_log_auto(&c, why, sizeof(why)), 1);
	snprintf(file, sizeof(file), "log = auto: %s (it exists", want);
	cr_assert(strstr(why, file) != NULL, "%s", why);
	config_free(&c);

	/* Only "no such file" means the journal: a directory (or a file the
	 * user may not see) is the file, and reading it says what is wrong. */
	cr_assert_eq(unlink(want), 0);
	cr_assert_eq(mkdir(want, 0755), 0);
	load_auto(dir, text, &c);
	cr_assert_str_eq(c.logs[0], want);
	config_free(&c);
	tu_rmrf(dir);
}

Test(config, log_auto_choices_are_keys_and_mix_with_other_logs)
{
	char dir[256], other[600], dummy[600];
	struct config c;

	tu_mkdtemp(dir, sizeof(dir));
	snprintf(other, sizeof(other), "%s/other.log", dir);
	load_auto(dir, "[mailjail]\nlog = other.log, auto\n"
	    "log_auto_file = /nonexistent-dir/mail.log\n"
	    "log_auto_journal = journal:SYSLOG_IDENTIFIER=postfix/smtpd\n", &c);
	cr_assert_eq(c.nlogs, 2);
	cr_assert_str_eq(c.logs[0], other);
	cr_assert_eq(c.log_auto, 1);
	cr_assert_str_eq(c.logs[1], "journal:SYSLOG_IDENTIFIER=postfix/smtpd");
	config_free(&c);

	/* A path under a regular file (ENOTDIR) does not exist either. */
	tu_write(dir, "plain", "", dummy, sizeof(dummy));
	load_auto(dir, "[mailjail]\nlog_auto_file = plain/mail.log\n", &c);
	cr_assert_eq(c.log_auto, 0, "auto is the default");
	cr_assert_str_eq(c.logs[0], "journal:postfix@-.service");
	config_free(&c);

	/* Without "auto", the keys change nothing. */
	load_auto(dir, "[mailjail]\nlog = other.log\nlog_auto_file = plain\n", &c);
	cr_assert_eq(c.log_auto, -1);
	cr_assert_eq(config_describe_log_auto(&c, dummy, sizeof(dummy)), 0);
	cr_assert_str_eq(c.logs[0], other);
	config_free(&c);
	tu_rmrf(dir);
}

Test(config, log_auto_errors)
{
	expect_error("[mailjail]\nlog = auto, auto\n", 2, "\"auto\" given twice");
	/* Whatever auto chooses, naming one of its choices beside it would
	 * read the same lines twice. */
	expect_error("[mailjail]\nlog = auto, /nonexistent/mail.log\n"
	    "log_auto_file = /nonexistent/mail.log\n", 2, "read twice");
	expect_error("[mailjail]\nlog_auto_journal = journal:postfix@-.service\n"
	    "log = journal:postfix@-.service, auto\n", 3, "read twice");
	expect_error("[mailjail]\nlog_auto_journal = /var/log/mail.log\n", 2,
	    "not a journal source");
	expect_error("[mailjail]\nlog_auto_journal = journal:lower=case\n", 2,
	    "bad field name");
	expect_error("[mailjail]\nlog_auto_file =\n", 2, "empty path");
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
