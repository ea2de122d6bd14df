/*
 * journal - Postfix lines from the systemd journal through sd-journal,
 * resumed from a saved cursor.
 *
 * A log item "journal:MATCH" in [mailjail] log is one journal source.  MATCH
 * is journalctl's match syntax, with a shorthand for units:
 *
 *   journal:                            SYSLOG_FACILITY=2 (mail): the default
 *   journal:FIELD=VALUE                 an exact match on one field
 *   journal:postfix@-.service           a name ending in .service means
 *                                       _SYSTEMD_UNIT=postfix@-.service
 *   journal:A=1 B=2                     terms separated by blanks: terms on
 *                                       different fields must all hold, terms
 *                                       on the same field are alternatives
 *   journal:A=1 + B=2                   "+" between groups: either group
 *
 * FIELD is 1-64 of A-Z 0-9 _, not starting with a digit or "__" (sd-journal's
 * rule).  A VALUE is matched exactly (sd-journal has no globs) and cannot
 * hold blanks or commas (commas separate the items of [mailjail] log).
 *
 * Each entry becomes the line the rules read:
 *   2026-11-22T10:00:01.123456+00:00 HOST IDENT[PID]: MESSAGE
 * from __REALTIME_TIMESTAMP (UTC), _HOSTNAME, SYSLOG_IDENTIFIER (else _COMM),
 * SYSLOG_PID (else _PID) and MESSAGE.  Everything but the stamp is text the
 * logging process chose: control bytes in MESSAGE (a newline above all: it
 * must not start a second, forged line) are written as rsyslog does, "#012"
 * (octal), and blanks, '[', ']' and ':' in HOST and IDENT become '_' so the
 * line's header always parses as what it is.  An entry whose line would be
 * longer than FOLLOW_LINE_MAX, or without MESSAGE, is skipped (counted).
 *
 * Position: the cursor of the last entry delivered.  The caller commits it
 * in the batch's transaction (journal_pending_cursor, then journal_saved after
 * COMMIT) and gives it back to journal_open on restart: reading resumes with
 * the first entry after it.  Without a saved cursor reading starts after the
 * newest entry already in the journal (whatever its fields), and that
 * entry's cursor is saved at the first commit, so later restarts lose
 * nothing.  If the saved entry is gone (vacuumed), reading resumes at the
 * first entry after where it was.
 *
 * Privileges: journal_open opens the journal files and sets up sd-journal's
 * inotify watches; call it before dropping root, and journal_position after
 * (the cursor is in the database, which only the unprivileged user opens).
 * Files created later (journald rotates) are opened as the unprivileged
 * user, which therefore needs group systemd-journal or adm.
 *
 * Memory: struct journal owns the sd_journal handle, its line buffer, its
 * source string and cursor; lines passed to the callback are valid only
 * during the call.  journal_close() releases everything.
 */
#ifndef MAILJAIL_JOURNAL_H
#define MAILJAIL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "follow.h"

#define JOURNAL_PREFIX "journal:"
#define JOURNAL_SOURCE_MAX 1024   /* bytes of one "journal:..." item */
#define JOURNAL_TERMS_MAX 32
/* With no MATCH: Postfix logs with facility mail. */
#define JOURNAL_DEFAULT_MATCH "SYSLOG_FACILITY=2"

struct journal;

/* Whether a [mailjail] log item names a journal source. */
bool journal_is_source(const char *log);

/* Check the syntax of a "journal:..." item; on error returns -1 and says
 * why in why (for a file:line: message). */
int journal_check_source(const char *source, char *why, size_t wlen);

/*
 * Open the journal (directory NULL: the local system journal, else the
 * journal files in directory) and make sd-journal's inotify watches: the
 * part that needs root or the journal's groups.  Nothing is read until
 * journal_position.  index is passed to the line callback as its file
 * argument.  Returns 0, or -1 with a one-line reason in err.
 */
int journal_open(struct journal **out, const char *source, size_t index,
    const char *directory, char *err, size_t errlen);
/*
 * Apply source's match and position after cursor (NULL: none saved; then
 * after the newest entry in the journal now).  Once, after journal_open:
 * the daemon calls it after the privilege drop, when the database (where
 * the cursor is kept) is open as the unprivileged user.  Returns 0, or -1
 * with a one-line reason in err.
 */
int journal_position(struct journal *j, const char *cursor, char *err, size_t errlen);
void journal_close(struct journal *j);

/* The source as given ("journal:..."), the key its cursor is saved under. */
const char *journal_source(const struct journal *j);

/*
 * Deliver up to max entries available now as lines to cb (the line callback
 * of follow.h: 0 goes on, non-zero stops; the entry counts as consumed).
 * Returns the number of entries consumed (skipped ones included; 0: nothing
 * new), or -1 on an error worth stopping for.  Never blocks.  An entry its
 * writer was still adding when a read came to the end is delivered by the
 * first read after a journal_process that saw the writer's notice.
 * Before journal_position: -1, said (a caller's bug).
 */
long journal_read(struct journal *j, follow_line_cb cb, void *arg, size_t max);

/*
 * For the caller's poll: the descriptor, the events to wait for, and how
 * long at most to wait (-1: no limit).  After the poll returns (readable or
 * not), call journal_process; then journal_read.
 */
int journal_fd(const struct journal *j);
short journal_events(const struct journal *j);
int journal_timeout_ms(const struct journal *j);
/* Let sd-journal take in what changed (new entries, new files).
 * Returns 0, or -1 on an error worth stopping for. */
int journal_process(struct journal *j);

/* The cursor to save, or NULL if it has not moved since journal_saved. */
const char *journal_pending_cursor(const struct journal *j);
/* The pending cursor was committed. */
void journal_saved(struct journal *j);
/* The database refused the batch: read again from the last committed
 * entry (or from where reading started).  Returns 0, or -1 (logged; also
 * before journal_position). */
int journal_rewind(struct journal *j);
/* The same, to the cursor the database holds for this source (saved; NULL
 * if none): with a server, a COMMIT whose answer was lost may have gone
 * through, and then its cursor is the one to go back to. */
int journal_rewind_saved(struct journal *j, const char *saved);

/* Entries skipped: no MESSAGE, or the line longer than FOLLOW_LINE_MAX. */
uint64_t journal_skipped(const struct journal *j);

/*
 * After the privilege drop: whether a journal file (or directory) of this
 * source cannot be opened by the current user.  The files open already are
 * still read, but files journald creates later (rotation) would be missed
 * without a word from sd-journal, so the daemon warns.  Returns 1 with the
 * first such path in path, or 0.
 */
int journal_unreadable(const struct journal *j, char *path, size_t plen);

/* The realtime stamp (Unix microseconds) in a cursor's "t=" field, without
 * opening a journal (for status).  Returns 0, or -1 if there is none. */
int journal_cursor_time(const char *cursor, uint64_t *usec);

#endif
