/*
 * rules - what a log line means.  Loads rules/NAME.rules files (one INI section per
 * rule: program glob, event name, PCRE2 pattern), JIT-compiles the patterns,
 * and turns a line into an event.
 *
 * A line is "STAMP HOST PROGRAM[PID]: MESSAGE".  A rule applies when its
 * program glob (fnmatch-style, '*' matches '/' too) matches PROGRAM; its
 * pattern runs on MESSAGE.  Named groups ip, user, sender, qid, nrcpt, rcpt,
 * newqid fill the event; an ip that inet_pton rejects, or a field longer than its buffer,
 * makes the line yield no event (counted as bad field).  Rules are tried in
 * load order (files by name, sections in file order); the first match wins.
 *
 * Security: patterns must anchor captures to Postfix's fixed text; the shipped
 * rules do, and tests/ prove that crafted user names and HELO names cannot
 * supply the captured ip or user.
 *
 * Memory: the ruleset owns its compiled patterns, names and one reusable
 * match data block; rules_match() does not allocate.  Not thread-safe.
 */
#ifndef MAILJAIL_RULES_H
#define MAILJAIL_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgfile.h"
#include "logtime.h"
#include "types.h"

struct ruleset;

enum rules_result {
	RULES_NOMATCH = 0,       /* a well-formed line no rule matched */
	RULES_MATCH,             /* *ev filled */
	RULES_BADLINE,           /* no stamp/program, NUL bytes or invalid UTF-8 */
	RULES_BADFIELD,          /* a rule matched but a capture was invalid */
};

/* Load a directory of *.rules (or one file).  Every problem becomes a
 * "file:line: message" diag; returns 0 or -1. */
int rules_load(const char *path, struct ruleset **out, struct diag *d);
void rules_free(struct ruleset *rs);

size_t rules_count(const struct ruleset *rs);
const char *rules_name(const struct ruleset *rs, size_t i);
const char *rules_event(const struct ruleset *rs, size_t i);
bool rules_has_event(const struct ruleset *rs, const char *event);
/* Whether some rule producing event captures the named group ("ip",
 * "user", "sender", ...). */
bool rules_event_captures(const struct ruleset *rs, const char *event, const char *group);
/* Drop every rule but the one named (test-rules --rule): the line is then
 * tried against that rule alone, not first-match-wins among all.  Returns 0,
 * or -1 if there is no such rule (the set is unchanged). */
int rules_keep_only(struct ruleset *rs, const char *name);
/* Matches abandoned at the PCRE2 match or depth limit (a pathological
 * pattern): counted as no match. */
uint64_t rules_limit_hits(const struct ruleset *rs);

/*
 * Match one line (without its newline).  On RULES_MATCH fills *ev and sets
 * *rule_index (if not NULL).  *rule_index is also set for RULES_BADFIELD.
 */
enum rules_result rules_match(struct ruleset *rs, struct logtime *lt,
    const char *line, size_t len, struct event *ev, size_t *rule_index);

#endif
