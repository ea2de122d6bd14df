/*
 * rules - log lines to events with PCRE2 (JIT).  See rules.h.
 *
 * Per line: check the bytes (no NUL, valid UTF-8: a fast ASCII pass first),
 * parse the stamp and the "host program[pid]: " header, then try only the
 * rules whose program glob matches the tag (the answer is cached per
 * distinct tag: a mail log has a few dozen), skipping a rule at once when
 * the message does not start with the character after its pattern's '^',
 * or lacks a literal every match must contain (searched once per line for
 * rules in a row that need the same one).  Both are read off the
 * pattern at load (required_literal) by a parser that knows a strict subset
 * of PCRE2's syntax and gives up (the rule then always runs) on anything
 * else: a prefilter may only skip lines PCRE2 would not match.  A
 * JIT-compiled pattern runs with pcre2_jit_match.
 * Captures are copied into the event's fixed buffers; an ip must survive
 * inet_pton and is stored as inet_ntop prints it (addr_format, no printf).
 *
 * Memory: the ruleset owns names, globs, compiled patterns, one match data
 * block and one match context (match and depth limits: a pathological
 * pattern costs a bounded time per line, counted in rules_limit_hits()).
 */
#include "rules.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "addr.h"

#define RULES_MATCH_LIMIT 100000
#define RULES_DEPTH_LIMIT 1000
#define TAG_CACHE_SIZE 256          /* power of two */
#define TAG_MAX 64
#define LITERAL_MAX 32              /* longest required literal kept */
#define LITERAL_MIN 3               /* shorter ones are not worth the search */

enum group { G_IP, G_USER, G_SENDER, G_QID, G_NRCPT, G_RCPT, G_NEWQID, G_COUNT };
static const char *const group_names[G_COUNT] = { "ip", "user", "sender", "qid", "nrcpt",
    "rcpt", "newqid" };

/* A text every match contains: at the start of the message (after '^';
 * compared in place) or anywhere in it (memchr for its rarest byte, then
 * memcmp: see literal_in). */
struct literal {
	char text[LITERAL_MAX];
	size_t len;              /* 0: none */
	size_t rare;             /* index of its byte least common in logs */
	bool at_start;
};

struct rule {
	char *name, *event, *program, *pattern;
	char *file;
	int section_line, pattern_line;
	bool has_program, has_event, has_pattern;
	pcre2_code *re;
	int group[G_COUNT];          /* capture number, or 0 */
	int first_unit;              /* required first byte of MESSAGE, or -1 */
	struct literal literal;      /* every match contains it */
	uint32_t literal_group;      /* rules in a row with the same literal share
	                              * one search per line: the first's index */
	bool jit;                    /* JIT-compiled: pcre2_jit_match */
};

struct tag_entry {
	char tag[TAG_MAX];
	size_t len;
	uint32_t *applies;           /* [0]: n, [1..n]: rules whose glob matches */
	bool used;
};

struct ruleset {
	struct rule *rules;
	size_t n, cap;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	struct tag_entry cache[TAG_CACHE_SIZE];
	size_t cache_used;
	uint32_t *scratch;           /* applies[] for uncached tags */
	uint64_t limit_hits;
	/* loading state */
	const char *cur_file;
	int cur_section_line;
	struct diag *d;
};

static void
rule_free(struct rule *r)
{
	free(r->name);
	free(r->event);
	free(r->program);
	free(r->pattern);
	free(r->file);
	pcre2_code_free(r->re);
}

void
rules_free(struct ruleset *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->rules[i]);
	free(rs->rules);
	for (size_t i = 0; i < TAG_CACHE_SIZE; i++)
		free(rs->cache[i].applies);
	free(rs->scratch);
	pcre2_match_data_free(rs->md);
	pcre2_match_context_free(rs->mctx);
	free(rs);
}

size_t
rules_count(const struct ruleset *rs)
{
	return rs ? rs->n : 0;
}

const char *
rules_name(const struct ruleset *rs, size_t i)
{
	return rs->rules[i].name;
}

const char *
rules_event(const struct ruleset *rs, size_t i)
{
	return rs->rules[i].event;
}

bool
rules_has_event(const struct ruleset *rs, const char *event)
{
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->rules[i].event, event) == 0)
			return true;
	return false;
}

bool
rules_event_captures(const struct ruleset *rs, const char *event, const char *group)
{
	int g;

	for (g = 0; g < G_COUNT; g++)
		if (strcmp(group_names[g], group) == 0)
			break;
	if (g == G_COUNT)
		return false;
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->rules[i].event, event) == 0 && rs->rules[i].group[g] != 0)
			return true;
	return false;
}

int
rules_keep_only(struct ruleset *rs, const char *name)
{
	size_t keep = rs->n;

	for (size_t i = 0; i < rs->n && keep == rs->n; i++)
		if (strcmp(rs->rules[i].name, name) == 0)
			keep = i;
	if (keep == rs->n)
		return -1;
	for (size_t i = 0; i < rs->n; i++)
		if (i != keep)
			rule_free(&rs->rules[i]);
	rs->rules[0] = rs->rules[keep];
	rs->n = 1;
	/* the tag cache lists rule indexes that no longer exist */
	for (size_t i = 0; i < TAG_CACHE_SIZE; i++) {
		free(rs->cache[i].applies);
		memset(&rs->cache[i], 0, sizeof(rs->cache[i]));
	}
	rs->cache_used = 0;
	return 0;
}

uint64_t
rules_limit_hits(const struct ruleset *rs)
{
	return rs->limit_hits;
}

/* rule_for_section - the rule being built for this [section] of this file */
static struct rule *
rule_for_section(struct ruleset *rs, const char *file, const char *section, int section_line)
{
	struct rule *r;

	if (rs->n > 0) {
		r = &rs->rules[rs->n - 1];
		if (r->section_line == section_line && strcmp(r->file, file) == 0)
			return r;
	}
	for (size_t i = 0; i < rs->n; i++) {
		if (strcmp(rs->rules[i].name, section) == 0) {
			diag_add(rs->d, file, section_line, "rule [%s] is defined twice (first in "
			    "%s:%d)", section, rs->rules[i].file, rs->rules[i].section_line);
			return NULL;
		}
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 16;
		struct rule *nr = realloc(rs->rules, cap * sizeof(*nr));
		if (nr == NULL)
			return NULL;
		rs->rules = nr;
		rs->cap = cap;
	}
	r = &rs->rules[rs->n];
	memset(r, 0, sizeof(*r));
	r->name = strdup(section);
	r->file = strdup(file);
	r->section_line = section_line;
	r->first_unit = -1;
	if (r->name == NULL || r->file == NULL) {
		rule_free(r);
		return NULL;
	}
	rs->n++;
	return r;
}

static bool
valid_event_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static int
rules_handler(void *arg, const char *file, const char *section, int section_line,
    const char *key, const char *value, int line)
{
	struct ruleset *rs = arg;
	struct rule *r;

	if (*section == '\0') {
		diag_add(rs->d, file, line, "\"%s\" outside of a [rule] section", key);
		return -1;
	}
	if ((r = rule_for_section(rs, file, section, section_line)) == NULL)
		return -1;
	if (strcmp(key, "pattern") == 0) {
		/* An indented continuation line extends the pattern. */
		size_t old = r->pattern ? strlen(r->pattern) : 0;
		char *p = realloc(r->pattern, old + strlen(value) + 1);
		if (p == NULL)
			return -1;
		memcpy(p + old, value, strlen(value) + 1);
		r->pattern = p;
		if (!r->has_pattern)
			r->pattern_line = line;
		r->has_pattern = true;
	} else if (strcmp(key, "program") == 0 || strcmp(key, "event") == 0) {
		bool prog = key[0] == 'p';
		if (prog ? r->has_program : r->has_event) {
			diag_add(rs->d, file, line, "rule [%s]: %s given twice", section, key);
			return -1;
		}
		if (*value == '\0' || (!prog && !valid_event_name(value))) {
			diag_add(rs->d, file, line, "rule [%s]: bad %s \"%s\"%s", section, key,
			    value, prog ? "" : " (use a-z, 0-9 and _)");
			return -1;
		}
		if (prog) {
			r->program = strdup(value);
			r->has_program = true;
		} else {
			r->event = strdup(value);
			r->has_event = true;
		}
	} else {
		diag_add(rs->d, file, line, "rule [%s]: unknown key \"%s\" (expected program, "
		    "event, pattern)", section, key);
		return -1;
	}
	return 0;
}

/* byte_rarity - how rare c is in a mail log's messages (higher: rarer) */
static int
byte_rarity(unsigned char c)
{
	if (c == ' ')
		return 0;
	if (c >= 'a' && c <= 'z')
		return 1;
	if ((c >= '0' && c <= '9') || c == '.' || c == ':' || c == '-')
		return 2;
	if (c == '=' || c == ',')
		return 3;
	if (c >= 'A' && c <= 'Z')
		return 4;
	return 5;
}

/*
 * The literal prefilter reads the pattern with a small parser of its own,
 * which knows only a strict subset of PCRE2's syntax (compiled with no
 * options) and follows PCRE2's own reading of it:
 *   - plain bytes (not one of \ ^ $ . [ | ( ) ? * + {), and a backslash
 *     before ASCII punctuation or a space: literal characters;
 *   - \d \D \s \S \w \W \h \H \v \V \R \N \X, \t \n \r \f \e \a, ., and the
 *     assertions ^ $ \b \B \A \z \Z \G: items that are not literal;
 *   - classes, ended the way PCRE2 ends them, holding bytes, the escapes
 *     above (\b: backspace) and POSIX names "[:" "^"? [a-z]+ ":]";
 *   - groups ( (?: (?<name> (?P<name> (?'name' (?= (?! (?<= (?<! and
 *     (?flags: without x, whose content (same subset, '|' allowed) is
 *     never literal;
 *   - quantifiers ? * + {n} {n,} {n,m}, then + or ? at most.
 * Anything else (\Q, \E, \c, \x, octal, back references, \K, \p, (?#,
 * option settings (?i), (*VERB), callouts, conditions, recursion, atomic
 * groups, (?|, a '{' that is not a quantifier, a '|' at the top level...)
 * means no literal and no first byte: the pattern then always runs.  The
 * whole pattern is read, groups included, so that nothing in a group can
 * end a match early ((*ACCEPT)) or hide where the group ends (\c, (?x)).
 * tests/test_rules.c checks this against PCRE2 on random patterns, and
 * tests/fuzz/fuzz_prefilter.c under libFuzzer.
 */
#define SCAN_DEPTH_MAX 32

struct lit_scan {
	const char *pat;
	struct literal lead, inner;   /* longest runs: right after '^', elsewhere */
	char run[LITERAL_MAX];        /* the run of top-level literals being read */
	size_t n;
	bool run_lead;
};

static bool
is_ascii_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* scan_escape - p at '\': past the escape, *lit its character (-1: not a
 * literal item); NULL for an escape outside the subset */
static const char *
scan_escape(const char *p, bool in_class, int *lit)
{
	unsigned char c = (unsigned char)p[1];

	*lit = -1;
	if (c >= ' ' && c < 0x7f && !is_ascii_alnum(c)) {
		*lit = c;                     /* \. \[ \\ and friends */
		return p + 2;
	}
	if (c != '\0' && strchr("dDsSwWhHvVtnrfea", c) != NULL)
		return p + 2;
	if (in_class)
		return c == 'b' ? p + 2 : NULL;   /* [\b] is a backspace */
	if (c != '\0' && strchr("bBAzZGRX", c) != NULL)
		return p + 2;
	if (c == 'N' && p[2] != '{')          /* not \N{U+..} nor \N{n} */
		return p + 2;
	return NULL;
}

/* scan_class - p at '[': the byte after the class's ']', or NULL.  As in
 * PCRE2, a ']' first is a member, and "[:" starts a POSIX name only when a
 * ":]" comes before any ']': "[[:]" holds '[' and ':'.  Only well-formed
 * names are taken; any other "[:" "[." "[=" is outside the subset. */
static const char *
scan_class(const char *p)
{
	int lit;

	p++;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p != ']') {
		if (*p == '\0')
			return NULL;
		if (*p == '\\') {
			if ((p = scan_escape(p, true, &lit)) == NULL)
				return NULL;
		} else if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			const char *q = p + 2, *name;
			if (p[1] != ':')
				return NULL;
			if (*q == '^')
				q++;
			for (name = q; *q >= 'a' && *q <= 'z'; q++)
				;
			if (q == name || q[0] != ':' || q[1] != ']')
				return NULL;
			p = q + 2;
		} else {
			p++;
		}
	}
	return p + 1;
}

/* scan_group_open - p at '(': where the group's content starts, or NULL
 * for a kind of group outside the subset */
static const char *
scan_group_open(const char *p)
{
	const char *q = p + 2;
	char close = '>';

	if (p[1] == '*')
		return NULL;
	if (p[1] != '?')
		return p + 1;
	switch (*q) {
	case ':':
	case '=':
	case '!':
		return q + 1;
	case '<':
		if (q[1] == '=' || q[1] == '!')
			return q + 2;
		q++;
		break;
	case 'P':
		if (q[1] != '<')
			return NULL;      /* (?P=name) (?P>name) */
		q += 2;
		break;
	case '\'':
		close = '\'';
		q++;
		break;
	default:
		/* (?flags: without x, which changes how the content reads */
		while (*q != '\0' && strchr("imnsUJ-^", *q) != NULL)
			q++;
		return *q == ':' ? q + 1 : NULL;
	}
	if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_'))
		return NULL;
	while (is_ascii_alnum((unsigned char)*q) || *q == '_')
		q++;
	return *q == close ? q + 1 : NULL;
}

/* scan_quantifier - past a quantifier at p; p itself when there is none;
 * NULL if unsure (a '{' that is no quantifier in every PCRE2 version, as
 * {,n}, or a quantifier after a quantifier) */
static const char *
scan_quantifier(const char *p)
{
	if (*p == '?' || *p == '*' || *p == '+') {
		p++;
	} else if (*p == '{') {
		const char *q = p + 1;
		if (!(*q >= '0' && *q <= '9'))
			return NULL;
		while (*q >= '0' && *q <= '9')
			q++;
		if (*q == ',')
			for (q++; *q >= '0' && *q <= '9'; q++)
				;
		if (*q != '}')
			return NULL;
		p = q + 1;
	} else {
		return p;
	}
	if (*p == '+' || *p == '?')
		p++;
	if (*p == '?' || *p == '*' || *p == '+' || *p == '{')
		return NULL;
	return p;
}

/* scan_seq - the items from p to the ')' closing a group (depth > 0) or
 * the end of the pattern (depth 0); the runs of top-level literals go to
 * s.  Returns where it stopped, or NULL outside the subset. */
static const char *
scan_seq(struct lit_scan *s, const char *p, int depth)
{
	bool top = depth == 0;

	if (depth > SCAN_DEPTH_MAX)
		return NULL;
	for (;;) {
		struct literal *best = s->run_lead ? &s->lead : &s->inner;
		const char *atom = p, *q;
		int lit = -1;
		bool quantified;

		if (top && s->n > best->len) {
			memcpy(best->text, s->run, s->n);
			best->len = s->n;
		}
		if (*p == '\0')
			return top ? p : NULL;
		if (*p == ')')
			return top ? NULL : p;
		if (*p == '|') {
			if (top)
				return NULL;   /* an alternative: nothing is required */
			p++;
			continue;
		}
		if (*p == '\\') {
			if ((p = scan_escape(p, false, &lit)) == NULL)
				return NULL;
		} else if (*p == '[') {
			if ((p = scan_class(p)) == NULL)
				return NULL;
		} else if (*p == '(') {
			if ((q = scan_group_open(p)) == NULL ||
			    (q = scan_seq(s, q, depth + 1)) == NULL)
				return NULL;
			p = q + 1;         /* past its ')' */
		} else if (*p == '.' || *p == '^' || *p == '$') {
			p++;
		} else if (*p == '?' || *p == '*' || *p == '+' || *p == '{') {
			return NULL;       /* a quantifier with nothing before it */
		} else {
			lit = (unsigned char)*p++;
		}
		/* the item just read: a quantifier makes it optional or repeated */
		if ((q = scan_quantifier(p)) == NULL)
			return NULL;
		quantified = q != p;
		p = q;
		if (!top)
			continue;
		if (quantified || lit < 0) {
			s->n = 0;
			continue;
		}
		if (s->n == 0)
			s->run_lead = s->pat[0] == '^' && atom == s->pat + 1;
		if (s->n < sizeof(s->run))
			s->run[s->n++] = (char)lit;
	}
}

/*
 * required_literal - a run of literal characters every match of pat must
 * contain, so a line without it is skipped before PCRE2 runs: characters
 * at the top level of the pattern (outside groups and classes), not
 * followed by a quantifier, in a pattern wholly inside the subset above
 * and without a top-level '|'.  The longest run after the start is
 * preferred (PCRE2 fails fast on a wrong start by itself), else the run
 * right after '^'.  *first is the byte every match starts with: the first
 * of the run right after '^', or -1.  (PCRE2's PCRE2_INFO_FIRSTCODEUNIT is
 * no substitute: it is documented for unanchored patterns only, and does
 * not say when it is caseless, as for ^A?a(*ACCEPT), whose first code unit
 * is "A (caseless)".)
 */
static void
required_literal(const char *pat, struct literal *out, int *first)
{
	struct lit_scan s;

	memset(out, 0, sizeof(*out));
	*first = -1;
	memset(&s, 0, sizeof(s));
	s.pat = pat;
	if (scan_seq(&s, pat, 0) == NULL)
		return;
	if (s.lead.len > 0)
		*first = (unsigned char)s.lead.text[0];
	if (s.inner.len >= LITERAL_MIN) {
		*out = s.inner;
	} else if (s.lead.len >= LITERAL_MIN) {
		*out = s.lead;
		out->at_start = true;
	}
	for (size_t i = 1; i < out->len; i++)
		if (byte_rarity((unsigned char)out->text[i]) >
		    byte_rarity((unsigned char)out->text[out->rare]))
			out->rare = i;
}

/* literal_in - whether msg can match as far as l tells.  glibc's memmem is
 * not vectorised; memchr for the literal's rarest byte, then memcmp, is. */
static bool
literal_in(const struct literal *l, const char *msg, size_t len)
{
	const char *p, *end;

	if (l->len == 0)
		return true;
	if (len < l->len)
		return false;
	if (l->at_start)
		return memcmp(msg, l->text, l->len) == 0;
	/* the rare byte of a match starting at s is at s + rare, s <= len - l->len */
	p = msg + l->rare;
	end = msg + (len - l->len) + l->rare + 1;
	while (p < end && (p = memchr(p, l->text[l->rare], (size_t)(end - p))) != NULL) {
		if (memcmp(p - l->rare, l->text, l->len) == 0)
			return true;
		p++;
	}
	return false;
}

/* compile_rule - PCRE2 + JIT, named groups checked; diags on failure */
static int
compile_rule(struct ruleset *rs, struct rule *r)
{
	PCRE2_SIZE erroff;
	int errcode, ngroups, entry_size;
	uint32_t namecount;
	PCRE2_SPTR table;
	char msg[256];

	r->re = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED, 0, &errcode,
	    &erroff, NULL);
	if (r->re == NULL) {
		pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof(msg));
		diag_add(rs->d, r->file, r->pattern_line, "rule [%s]: bad pattern at offset "
		    "%zu: %s", r->name, (size_t)erroff, msg);
		return -1;
	}
	/* JIT is 2-3x faster; without it (no executable memory) it still works. */
	r->jit = pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0;
	required_literal(r->pattern, &r->literal, &r->first_unit);
	pcre2_pattern_info(r->re, PCRE2_INFO_NAMECOUNT, &namecount);
	pcre2_pattern_info(r->re, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
	pcre2_pattern_info(r->re, PCRE2_INFO_NAMETABLE, &table);
	for (uint32_t i = 0; i < namecount; i++) {
		const unsigned char *e = table + (size_t)i * (size_t)entry_size;
		int num = (e[0] << 8) | e[1];
		const char *name = (const char *)e + 2;
		int g;

		for (g = 0; g < G_COUNT; g++)
			if (strcmp(name, group_names[g]) == 0)
				break;
		if (g == G_COUNT) {
			diag_add(rs->d, r->file, r->pattern_line, "rule [%s]: unknown named group "
			    "\"%s\" (allowed: ip, user, sender, qid, nrcpt, rcpt, newqid)", r->name, name);
			return -1;
		}
		r->group[g] = num;
	}
	pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
	return ngroups;
}

/* same_literal - whether two rules' prefilters look for the same thing */
static bool
same_literal(const struct literal *a, const struct literal *b)
{
	return a->len == b->len && a->at_start == b->at_start &&
	    memcmp(a->text, b->text, a->len) == 0;
}

/* group_literals - rules in a row (load order) that need the same literal
 * share one search of a line: a family of rules written around one fixed
 * text (rules/remote-reject.rules) costs a line without it one memchr */
static void
group_literals(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct rule *r = &rs->rules[i];
		r->literal_group = (uint32_t)i;
		if (i > 0 && r->literal.len > 0 &&
		    same_literal(&r->literal, &rs->rules[i - 1].literal))
			r->literal_group = rs->rules[i - 1].literal_group;
	}
}

int
rules_load(const char *path, struct ruleset **out, struct diag *d)
{
	struct ruleset *rs;
	size_t before = d->n;
	int maxgroups = 0;

	*out = NULL;
	if ((rs = calloc(1, sizeof(*rs))) == NULL) {
		diag_add(d, path, 0, "out of memory");
		return -1;
	}
	rs->d = d;
	(void)cfgfile_parse_path(path, ".rules", rules_handler, rs, d);
	for (size_t i = 0; i < rs->n; i++) {
		struct rule *r = &rs->rules[i];
		int g;

		if (!r->has_program || !r->has_event || !r->has_pattern) {
			diag_add(d, r->file, r->section_line, "rule [%s]: missing %s", r->name,
			    !r->has_program ? "program" : !r->has_event ? "event" : "pattern");
			continue;
		}
		if (r->program == NULL || r->event == NULL || r->pattern == NULL) {
			diag_add(d, r->file, r->section_line, "out of memory");
			continue;
		}
		if ((g = compile_rule(rs, r)) > maxgroups)
			maxgroups = g;
	}
	if (d->n == before && rs->n == 0)
		diag_add(d, path, 0, "no rules found (expected [name] sections in *.rules)");
	if (d->n > before)
		goto fail;
	group_literals(rs);
	rs->md = pcre2_match_data_create((uint32_t)maxgroups + 1, NULL);
	rs->mctx = pcre2_match_context_create(NULL);
	rs->scratch = calloc(rs->n + 1, sizeof(*rs->scratch));
	if (rs->md == NULL || rs->mctx == NULL || rs->scratch == NULL) {
		diag_add(d, path, 0, "out of memory");
		goto fail;
	}
	pcre2_set_match_limit(rs->mctx, RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(rs->mctx, RULES_DEPTH_LIMIT);
	rs->d = NULL;
	*out = rs;
	return 0;
fail:
	rules_free(rs);
	return -1;
}

/* text_ok - no NUL, valid UTF-8 (ASCII fast path, 8 bytes at a time) */
static bool
text_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i + 8 <= len) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		/* any high bit, or any zero byte */
		if ((w & 0x8080808080808080ULL) ||
		    ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
			break;
		i += 8;
	}
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1; cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2; cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3; cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong, surrogate, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

#define TAG_HASH_INIT 2166136261u   /* FNV-1a over the tag's bytes */
#define TAG_HASH_STEP(h, c) (((h) ^ (unsigned char)(c)) * 16777619u)

/* tag_rules - the rules whose glob matches the tag: [0] how many, then
 * their indexes in order; h is the tag's hash (computed while the header was
 * scanned) */
static const uint32_t *
tag_rules(struct ruleset *rs, const char *tag, size_t len, uint32_t h)
{
	char buf[TAG_MAX];
	uint32_t *applies;

	if (len >= TAG_MAX)
		return NULL;
	for (size_t probe = 0; probe < TAG_CACHE_SIZE; probe++) {
		struct tag_entry *e = &rs->cache[(h + probe) & (TAG_CACHE_SIZE - 1)];
		if (e->used && e->len == len && memcmp(e->tag, tag, len) == 0)
			return e->applies;
		if (!e->used)
			break;
	}
	memcpy(buf, tag, len);
	buf[len] = '\0';
	/* A log with a flood of distinct tags fills the cache; the rest are
	 * matched every time, which is slower but still right. */
	applies = rs->scratch;
	if (rs->cache_used < TAG_CACHE_SIZE / 2) {
		struct tag_entry *e = NULL;
		for (size_t probe = 0; probe < TAG_CACHE_SIZE; probe++) {
			e = &rs->cache[(h + probe) & (TAG_CACHE_SIZE - 1)];
			if (!e->used)
				break;
		}
		if (e && !e->used &&
		    (e->applies = calloc(rs->n + 1, sizeof(*e->applies))) != NULL) {
			memcpy(e->tag, tag, len);
			e->len = len;
			e->used = true;
			rs->cache_used++;
			applies = e->applies;
		}
	}
	applies[0] = 0;
	for (size_t i = 0; i < rs->n; i++)
		if (fnmatch(rs->rules[i].program, buf, 0) == 0)
			applies[++applies[0]] = (uint32_t)i;
	return applies;
}

/* copy_group - capture g of the last match into buf; -1 if it does not fit */
static int
copy_group(struct ruleset *rs, const struct rule *r, enum group g, const char *msg,
    char *buf, size_t len)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rs->md);
	int n = r->group[g];
	size_t start, end;

	buf[0] = '\0';
	if (n == 0 || ov[2 * n] == PCRE2_UNSET)
		return 0;
	start = ov[2 * n];
	end = ov[2 * n + 1];
	if (end - start >= len)
		return -1;
	memcpy(buf, msg + start, end - start);
	buf[end - start] = '\0';
	return 0;
}

/* canonical_ip - inet_pton, then back to text; IPv4-mapped IPv6 becomes
 * IPv4 so one client has one key */
static int
canonical_ip(char *ip, size_t len)
{
	unsigned char bin[16];
	static const unsigned char mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

	if (inet_pton(AF_INET, ip, bin) == 1)
		return addr_format(AF_INET, bin, ip, len);
	if (inet_pton(AF_INET6, ip, bin) != 1)
		return -1;
	if (memcmp(bin, mapped, 12) == 0)
		return addr_format(AF_INET, bin + 12, ip, len);
	return addr_format(AF_INET6, bin, ip, len);
}

/* fill_event - the captures of rule r into ev; -1 if any is invalid */
static int
fill_event(struct ruleset *rs, const struct rule *r, const char *msg, struct event *ev)
{
	char nrcpt[16];

	if (copy_group(rs, r, G_IP, msg, ev->ip, sizeof(ev->ip)) != 0 ||
	    copy_group(rs, r, G_USER, msg, ev->user, sizeof(ev->user)) != 0 ||
	    copy_group(rs, r, G_SENDER, msg, ev->sender, sizeof(ev->sender)) != 0 ||
	    copy_group(rs, r, G_QID, msg, ev->qid, sizeof(ev->qid)) != 0 ||
	    copy_group(rs, r, G_NRCPT, msg, nrcpt, 11) != 0 ||
	    copy_group(rs, r, G_RCPT, msg, ev->rcpt, sizeof(ev->rcpt)) != 0 ||
	    copy_group(rs, r, G_NEWQID, msg, ev->newqid, sizeof(ev->newqid)) != 0)
		return -1;
	if (ev->ip[0] && canonical_ip(ev->ip, sizeof(ev->ip)) != 0)
		return -1;
	if (r->group[G_IP] && ev->ip[0] == '\0')
		return -1;
	ev->nrcpt = -1;
	if (nrcpt[0]) {
		long v = 0;
		for (const char *p = nrcpt; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v = v * 10 + (*p - '0');
		}
		ev->nrcpt = v;
	}
	ev->rule = r->name;
	ev->type = r->event;
	return 0;
}

enum rules_result
rules_match(struct ruleset *rs, struct logtime *lt, const char *line, size_t len,
    struct event *ev, size_t *rule_index)
{
	const char *p, *end = line + len, *tag, *msg;
	const uint32_t *applies;
	size_t used, taglen, msglen;
	uint32_t h, memo_group = UINT32_MAX;
	bool memo_found = false;
	int64_t t;

	if (!text_ok((const unsigned char *)line, len))
		return RULES_BADLINE;
	if (logtime_parse(lt, line, len, &t, &used) != 0 || used >= len || line[used] != ' ')
		return RULES_BADLINE;
	/* host */
	p = line + used + 1;
	while (p < end && *p == ' ')
		p++;
	while (p < end && *p != ' ')
		p++;
	if (p >= end)
		return RULES_BADLINE;
	/* program[pid]: message */
	tag = ++p;
	h = TAG_HASH_INIT;
	while (p < end && *p != '[' && *p != ':' && *p != ' ') {
		h = TAG_HASH_STEP(h, *p);
		p++;
	}
	taglen = (size_t)(p - tag);
	if (p >= end || taglen == 0)
		return RULES_BADLINE;
	if (*p == '[') {
		while (p < end && *p != ']')
			p++;
		if (p >= end)
			return RULES_BADLINE;
		p++;
	}
	if (end - p < 2 || p[0] != ':' || p[1] != ' ')
		return RULES_BADLINE;
	msg = p + 2;
	msglen = (size_t)(end - msg);

	if ((applies = tag_rules(rs, tag, taglen, h)) == NULL)
		return RULES_NOMATCH;
	for (uint32_t k = 1; k <= applies[0]; k++) {
		size_t i = applies[k];
		const struct rule *r = &rs->rules[i];
		int rc;

		if (r->first_unit >= 0 && (msglen == 0 || (unsigned char)msg[0] != r->first_unit))
			continue;
		if (r->literal.len > 0) {
			/* the rule before needed the same text: its answer holds */
			if (r->literal_group != memo_group) {
				memo_group = r->literal_group;
				memo_found = literal_in(&r->literal, msg, msglen);
			}
			if (!memo_found)
				continue;
		}
		/* pcre2_jit_match skips pcre2_match's checks of what was checked
		 * at load: same result, less work per line */
		if (r->jit)
			rc = pcre2_jit_match(r->re, (PCRE2_SPTR)msg, msglen, 0, 0, rs->md, rs->mctx);
		else
			rc = pcre2_match(r->re, (PCRE2_SPTR)msg, msglen, 0, 0, rs->md, rs->mctx);
		if (rc == PCRE2_ERROR_NOMATCH)
			continue;
		if (rc < 0) {
			/* match or depth limit: bounded, counted, not a match */
			rs->limit_hits++;
			continue;
		}
		if (rule_index)
			*rule_index = i;
		memset(ev, 0, offsetof(struct event, ip));
		ev->time = t;
		if (fill_event(rs, r, msg, ev) != 0)
			return RULES_BADFIELD;
		return RULES_MATCH;
	}
	return RULES_NOMATCH;
}
