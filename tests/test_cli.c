/*
 * test_cli - the command line as an admin meets it: every subcommand's
 * --help, the options each help lists (each is run through the real binary
 * to prove the command accepts it), and test-rules, the rule tester.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char dir[256], bin[512], conf[512], rules[512], sample[512];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	snprintf(conf, sizeof(conf), "%s/conf/mailjail.conf", tu_srcdir());
	snprintf(rules, sizeof(rules), "%s/rules", tu_srcdir());
	snprintf(sample, sizeof(sample), "%s/tests/data/sample-mail.log", tu_srcdir());
}

static void
teardown(void)
{
	tu_rmrf(dir);
}

TestSuite(help, .init = setup, .fini = teardown);
TestSuite(test_rules, .init = setup, .fini = teardown);

/* commands - the subcommands "mailjail --help" lists, one per line */
static char *
commands(void)
{
	return tu_sh_output("'%s' --help | sed -n '/^commands:/,/^$/s/^  \\([a-z-]*\\) .*/\\1/p'",
	    bin);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

Test(help, every_subcommand_answers_help)
{
	char *cmds = commands(), *save = NULL;
	size_t n = 0;

	for (char *c = strtok_r(cmds, "\n", &save); c; c = strtok_r(NULL, "\n", &save)) {
		char want[128], *out;
		snprintf(want, sizeof(want), "usage: mailjail %s", c);
		out = tu_sh_output("'%s' %s --help 2>&1; echo \"exit=$?\"", bin, c);
		cr_assert(strncmp(out, want, strlen(want)) == 0, "%s --help: %s", c, out);
		cr_assert(strstr(out, "\noptions:\n") != NULL, "%s lists its options: %s", c, out);
		cr_assert(strstr(out, "  -h, --help") != NULL, "%s: %s", c, out);
		cr_assert(strstr(out, "\nexit=0\n") != NULL, "%s --help exits 0: %s", c, out);
		free(out);
		/* -h too, and after other arguments */
		cr_assert_eq(tu_sh("'%s' %s -c /nonexistent x -h >/dev/null 2>&1", bin, c), 0, "%s -h", c);
		n++;
	}
	free(cmds);
	cr_assert_geq(n, 12, "run, replay, test-rules ... explain: %zu", n);
	cr_assert_eq(tu_sh("'%s' help explain | grep -q '^usage: mailjail explain TARGET'", bin), 0);
}

/* positional arguments that get a command past its usage check */
static const char *
args_for(const char *cmd)
{
	if (strcmp(cmd, "replay") == 0 || strcmp(cmd, "test-rules") == 0)
		return "x.log";
	if (strcmp(cmd, "history") == 0 || strcmp(cmd, "explain") == 0 ||
	    strcmp(cmd, "ban") == 0 || strcmp(cmd, "unban") == 0)
		return "192.0.2.1";
	if (strcmp(cmd, "hold") == 0 || strcmp(cmd, "release") == 0)
		return "bob";
	return "";
}

/* a value an option's argument placeholder (FILE, DURATION...) accepts */
static const char *
value_for(const char *opt, const char *placeholder)
{
	if (strcmp(opt, "--log-file") == 0)
		return "run.log";   /* the messages go there: shown after exit= */
	if (strcmp(placeholder, "DURATION") == 0)
		return "1h";
	if (strcmp(placeholder, "N") == 0)
		return "80";
	if (strcmp(placeholder, "PATH") == 0 || strcmp(placeholder, "FILE") == 0)
		return "/nonexistent/x";
	return "x";
}

/*
 * Every option a command's help lists is one the command accepts: run
 * with it (and a configuration that does not exist, so nothing is done),
 * getopt must not complain and the command must get as far as the
 * configuration (exit 2, naming the file).
 */
Test(help, every_option_a_help_lists_is_accepted)
{
	char *cmds = commands(), *save = NULL;
	size_t checked = 0;

	for (char *c = strtok_r(cmds, "\n", &save); c; c = strtok_r(NULL, "\n", &save)) {
		char *help = tu_sh_output("'%s' %s --help | sed -n 's/^  \\(-[a-z], \\)\\{0,1\\}"
		    "\\(--[a-z-]*\\)\\(\\[=N\\]\\)\\{0,1\\} \\{0,1\\}\\([A-Z]*\\).*/\\2 \\4/p'", bin, c);
		char *save2 = NULL;
		for (char *l = strtok_r(help, "\n", &save2); l; l = strtok_r(NULL, "\n", &save2)) {
			char opt[64] = "", ph[32] = "", *out;
			if (sscanf(l, "%63s %31s", opt, ph) < 1 || strcmp(opt, "--help") == 0)
				continue;
			/* run --syslog would log the config error to syslog: with
			 * --log-file it is a usage error first, still parsed */
			out = tu_sh_output("cd '%s' && rm -f run.log && '%s' %s -c /nonexistent/mj.conf %s "
			    "%s %s %s 2>&1; echo \"exit=$?\"; cat run.log 2>/dev/null", dir, bin, c, opt,
			    ph[0] ? value_for(opt, ph) : "",
			    strcmp(opt, "--syslog") == 0 ? "--log-file /dev/null" : "", args_for(c));
			cr_assert(strstr(out, "unrecognized option") == NULL &&
			    strstr(out, "invalid option") == NULL &&
			    strstr(out, "requires an argument") == NULL &&
			    strstr(out, "not valid here") == NULL &&
			    strstr(out, "doesn't allow an argument") == NULL,
			    "%s %s is listed but refused: %s", c, opt, out);
			cr_assert(strstr(out, "exit=2\n") != NULL, "%s %s: %s", c, opt, out);
			if (strcmp(opt, "--syslog") != 0)
				cr_assert(strstr(out, "/nonexistent/") != NULL,
				    "%s %s reached the configuration: %s", c, opt, out);
			free(out);
			checked++;
		}
		free(help);
	}
	free(cmds);
	cr_assert_geq(checked, 40, "options checked: %zu", checked);
}

Test(help, a_bad_command_line_gets_the_usage_line_and_exit_2)
{
	char *out = tu_sh_output("'%s' unban 2>&1; echo \"exit=$?\"", bin);

	cr_assert(strstr(out, "usage: mailjail unban IP[/LEN] [--dry-run]") != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
	out = tu_sh_output("'%s' test-rules --frobnicate x 2>&1; echo \"exit=$?\"", bin);
	cr_assert(strstr(out, "unrecognized option") != NULL, "%s", out);
	cr_assert(strstr(out, "usage: mailjail test-rules") != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
}

/* ---- test-rules ------------------------------------------------------------ */

static char *
test_rules(const char *args)
{
	return tu_sh_output("cd '%s' && '%s' test-rules --rules '%s' %s 2>&1; echo \"exit=$?\"", dir,
	    bin, rules, args);
}

Test(test_rules, samples_are_the_line_cut_to_the_width_its_time_and_captures)
{
	char args[700], *out, *p;

	snprintf(args, sizeof(args), "'%s'", sample);
	out = test_rules(args);
	/* not a terminal: cut at 120 columns */
	cr_assert(strstr(out, "\n    Nov 21 09:04:08 mx postfix/submission/smtpd[2007]: warning: "
	    "unknown[203.0.113.45]: SASL LOGIN authentication fail...\n") != NULL, "%s", out);
	cr_assert(strstr(out, "\n      2026-11-21 09:04:08 ") != NULL ||
	    strstr(out, "-11-21 09:04:08 ") != NULL, "the time with its year: %s", out);
	cr_assert(strstr(out, "  ip=203.0.113.45 user=sales\n") != NULL, "captures: %s", out);
	cr_assert(strstr(out, "sasl-auth-failed (event auth_failure): 22 matched") != NULL, "%s", out);
	cr_assert(strstr(out, "1127 lines: 332 matched a rule, 795 matched no rule") != NULL, "%s", out);
	cr_assert(strstr(out, "ip=192.0.2.66") == NULL, "never the spoofed address: %s", out);
	for (p = out; (p = strchr(p, '\n')) != NULL; p++) {
		char *e = strchr(p + 1, '\n');
		cr_assert(e == NULL || e - p - 1 <= 120, "a line over 120: %.*s", (int)(e - p), p);
	}
	free(out);
	snprintf(args, sizeof(args), "--width 60 '%s'", sample);
	out = test_rules(args);
	cr_assert(strstr(out, "\n    Nov 21 09:04:08 mx postfix/submission/smtpd[2007]: wa...\n")
	    != NULL, "%s", out);
	free(out);
	snprintf(args, sizeof(args), "--width 0 '%s'", sample);
	out = test_rules(args);
	cr_assert(strstr(out, "SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=sales\n")
	    != NULL, "whole: %s", out);
	free(out);
}

Test(test_rules, all_shows_every_match_and_missed_every_other_line)
{
	char args[700], *out;

	snprintf(args, sizeof(args), "--all '%s' | grep -c '^sasl-auth-failed$'", sample);
	out = test_rules(args);
	cr_assert_str_eq(out, "22\nexit=0\n", "%s", out);
	free(out);
	snprintf(args, sizeof(args), "--all '%s' | grep -c '^    Nov 21 '", sample);
	out = test_rules(args);
	cr_assert_str_eq(out, "332\nexit=0\n", "every match shown: %s", out);
	free(out);
	snprintf(args, sizeof(args), "--missed '%s' | grep '^no rule: '", sample);
	out = test_rules(args);
	cr_assert_eq(count_lines(out), 795 + 1, "every line no rule matched");
	cr_assert(strstr(out, "no rule: Nov 21 09:00:00 mx postfix/master[2000]: daemon started -- "
	    "version 3.7.11, configuration /etc/postfix\n") != NULL, "whole, not cut: %s", out);
	free(out);
	snprintf(args, sizeof(args), "--missed 2 '%s' | grep -c '^no rule: '", sample);
	out = test_rules(args);
	cr_assert_str_eq(out, "2\nexit=0\n", "%s", out);
	free(out);
	snprintf(args, sizeof(args), "--missed=3 '%s' | grep -c '^no rule: '", sample);
	out = test_rules(args);
	cr_assert_str_eq(out, "3\nexit=0\n", "%s", out);
	free(out);
}

Test(test_rules, one_rule_alone)
{
	char args[700], *out;

	/* qmgr-queued alone: its lines, and every other line missed */
	snprintf(args, sizeof(args), "--rule qmgr-queued '%s'", sample);
	out = test_rules(args);
	cr_assert(strstr(out, "1127 lines: 131 matched a rule, 996 matched no rule") != NULL, "%s", out);
	cr_assert(strstr(out, "qmgr-queued (event queued): 131 matched") != NULL, "%s", out);
	cr_assert(strstr(out, "sasl-auth-failed") == NULL, "no other rule: %s", out);
	free(out);
	out = test_rules("--rule no-such-rule x.log");
	cr_assert(strstr(out, "no rule named \"no-such-rule\"\nexit=2") != NULL, "%s", out);
	free(out);
}

Test(test_rules, a_line_given_as_argument_is_tested_directly)
{
	char *out;

	out = test_rules("'Dec  1 10:00:01 mx postfix/submission/smtpd[7]: warning: "
	    "unknown[2001:DB8::5]: SASL PLAIN authentication failed: , sasl_username=eve'");
	cr_assert(strstr(out, "rule sasl-auth-failed (event auth_failure) matches:\n") != NULL, "%s",
	    out);
	cr_assert(strstr(out, "  ip=2001:db8::5 user=eve\nexit=0") != NULL, "canonical: %s", out);
	free(out);
	out = test_rules("'Dec  1 10:00:01 mx postfix/smtpd[7]: connect from unknown[192.0.2.1]'");
	cr_assert(strstr(out, "no rule matches:\n    Dec  1 10:00:01 mx postfix/smtpd[7]: connect "
	    "from unknown[192.0.2.1]\nexit=0") != NULL, "%s", out);
	free(out);
	/* a crafted user name imitating another client's failure */
	out = test_rules("'Dec  1 10:00:01 mx postfix/smtpd[7]: warning: unknown[198.51.100.7]: "
	    "SASL LOGIN authentication failed: x, sasl_username=a]: warning: unknown[192.0.2.66]'");
	cr_assert(strstr(out, "ip=198.51.100.7 ") != NULL, "%s", out);
	cr_assert(strstr(out, "ip=192.0.2.66") == NULL, "%s", out);
	free(out);
	out = test_rules("'not a log line at all'");
	cr_assert(strstr(out, "no such file, and as a log line a bad line (no time stamp and "
	    "program tag") != NULL, "%s", out);
	free(out);
}

Test(test_rules, control_characters_are_shown_escaped)
{
	char line[600], *out;

	/* ESC [2J (clear the screen) inside a user name: valid UTF-8, a match */
	snprintf(line, sizeof(line), "%s/esc.log", dir);
	cr_assert_eq(tu_sh("printf 'Dec  1 10:00:01 mx postfix/smtpd[7]: warning: unknown[192.0.2.8]: "
	    "SASL LOGIN authentication failed: x, sasl_username=a\\033[2Jb\\n' > '%s'", line), 0);
	out = tu_sh_output("'%s' test-rules --rules '%s' --width 0 '%s' | od -c | grep -c 033", bin,
	    rules, line);
	cr_assert_str_eq(out, "0\n", "no raw ESC reaches the terminal");
	free(out);
	out = tu_sh_output("'%s' test-rules --rules '%s' '%s'", bin, rules, line);
	cr_assert(strstr(out, "user=a\\x1b[2Jb") != NULL, "%s", out);
	free(out);
}

Test(test_rules, rules_from_a_file_or_a_directory_errors_as_file_line)
{
	char args[3000], one[600], *out;

	/* one .rules file */
	snprintf(one, sizeof(one), "%s/rules/postfix.rules", tu_srcdir());
	snprintf(args, sizeof(args), "cd '%s' && '%s' test-rules --rules '%s' '%s'", dir, bin, one,
	    sample);
	out = tu_sh_output("%s", args);
	cr_assert(strstr(out, "332 matched a rule") != NULL, "%s", out);
	free(out);
	/* rules from the configuration */
	out = tu_sh_output("'%s' test-rules -c '%s' '%s'", bin, conf, sample);
	cr_assert(strstr(out, "332 matched a rule") != NULL, "%s", out);
	free(out);
	/* an error: file:line, exit 2, as check-config */
	tu_write(dir, "bad.rules", "# a comment\n[r]\nprogram = postfix/smtpd\nevent = x\n"
	    "pattern = ^(?<ip>[0-9.]+\n", one, sizeof(one));
	out = tu_sh_output("'%s' test-rules --rules '%s' '%s' 2>&1; echo \"exit=$?\"", bin, one,
	    sample);
	snprintf(args, sizeof(args), "%s:5: rule [r]: bad pattern", one);
	cr_assert(strstr(out, args) != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
	/* the same file in a directory */
	snprintf(args, sizeof(args), "%s/d", dir);
	cr_assert_eq(tu_sh("mkdir '%s' && cp '%s' '%s/'", args, one, args), 0);
	out = tu_sh_output("'%s' test-rules --rules '%s' '%s' 2>&1; echo \"exit=$?\"", bin, args,
	    sample);
	cr_assert(strstr(out, "/d/bad.rules:5: rule [r]: bad pattern") != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
}

Test(test_rules, reads_compressed_logs_and_refuses_what_is_not_a_log)
{
	char *out;

	cr_assert_eq(tu_sh("cd '%s' && xz -c '%s' > l.xz && cp '%s' prog", dir, sample, bin), 0);
	out = test_rules("l.xz");
	cr_assert(strstr(out, "l.xz (xz): 1127 lines: 332 matched a rule") != NULL, "%s", out);
	free(out);
	out = test_rules("prog");
	cr_assert(strstr(out, "prog: not a log: binary data") != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
}
