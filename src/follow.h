/*
 * follow - reads complete lines appended to one or more log files.
 *
 * Driven by libinotifytools (the file and its directory are watched).  Handles
 * rename-and-create rotation (the old file is read to its end, then the new
 * one from offset 0), copytruncate (size below our offset: restart at 0), a
 * file missing at start (wait for it to appear), a partial last line (held
 * until its newline arrives) and lines longer than FOLLOW_LINE_MAX (skipped
 * with one warning per line).  Limit: a file rotated away twice before
 * mailjail reads again (two rotations within one read cycle, or while the
 * caller cannot commit: see follow_committed) is skipped in between;
 * logrotate runs daily.
 *
 * Positions: follow_position() gives, for each file, (path, inode, offset of
 * the byte after the last line delivered, hash of the first line).  The
 * caller commits it with whatever the lines caused; on restart it passes the
 * saved position to follow_add(), which resumes there if inode and first-line
 * hash still match, and starts at 0 otherwise (the file was rotated).
 * A caller that commits tells follow so (follow_committed): from then on a
 * rotation is never crossed by lines not committed yet, so that
 * follow_rewind can always go back to them (see there).
 *
 * One-shot mode (replay): follow_open(..., false) makes no inotify watches;
 * follow_read() returns 0 lines at end of file.  In this mode a file that
 * starts like gzip, xz or bzip2 data is read through its decoder
 * (unpack.h): offsets and the first-line hash are then those of the
 * decoded text, and its unterminated last line is delivered (a compressed
 * file is finished; a plain one may still grow).
 *
 * libinotifytools keeps global state: at most one watching struct follow per
 * process.  Memory: struct follow owns its buffers (one per file, allocated at
 * follow_add) and fds; line pointers passed to the callback are valid only
 * during the call.
 */
#ifndef MAILJAIL_FOLLOW_H
#define MAILJAIL_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "types.h"

#define FOLLOW_LINE_MAX (64 * 1024)

struct follow;

/* Called for each complete line, without its newline.  file is the index
 * given by follow_add.  Return 0 to go on, non-zero to stop follow_read
 * (the line counts as consumed). */
typedef int (*follow_line_cb)(void *arg, size_t file, const char *line, size_t len);

int follow_open(struct follow **out, bool watch);
void follow_close(struct follow *f);

/* Add a log; resume (may be NULL) is the saved position for this path.
 * A missing file is not an error when watching (it is waited for).
 * Returns the file index (>= 0) or -1. */
int follow_add(struct follow *f, const char *path, const struct log_position *resume);

/*
 * Deliver up to max_lines complete lines available now, across files, calling
 * cb for each.  Returns the number delivered (0: nothing available now), or -1
 * on an error worth stopping for.  Never blocks.
 */
long follow_read(struct follow *f, follow_line_cb cb, void *arg, size_t max_lines);

/* Block until a followed file may have new data, or timeout_ms passes
 * (-1: forever).  Returns 1 if something happened, 0 on timeout, -1 on error
 * (EINTR is reported as 0 so a signal wakes the loop; -1 in one-shot mode).
 * Returns 1 at once if the last follow_read stopped with lines left. */
int follow_wait(struct follow *f, int timeout_ms);

/*
 * The same, also waking when one of the caller's descriptors extra[0..n)
 * (fd and events set; at most FOLLOW_EXTRA_FDS_MAX) is ready: their revents
 * are set, and 1 is returned.  For a daemon that reads other sources (the
 * journal) beside the files: libinotifytools may hold events in its own
 * buffer, which a poll of follow_fd() alone would not see.
 */
#define FOLLOW_EXTRA_FDS_MAX 16
struct pollfd;
int follow_wait_fds(struct follow *f, int timeout_ms, struct pollfd *extra, size_t nextra);

/*
 * Pacing (for a daemon that follows a busy log): when an event comes less
 * than ms after a follow_read that delivered lines, follow_wait takes the
 * events only ms after that read (it still wakes for the caller's
 * descriptors, a signal, or its timeout), and while lines keep coming that
 * fast it sleeps out each pace without waking for every event: lines
 * appended close together are read together, with one wake-up instead of
 * one each.  A line that comes after a quieter spell is read at once; none
 * waits more than ms longer.  0 (the default): none.
 */
void follow_set_pace(struct follow *f, int ms);

/*
 * The descriptor follow_wait polls (libinotifytools' own), for a caller that
 * multiplexes it with others (signalfd, timerfd); -1 in one-shot mode.  When
 * it is readable call follow_wait(f, 0) (it consumes the events and tells
 * whether they concern a followed file), then follow_read.  Poll it only
 * after follow_read delivered fewer than max_lines: lines already waiting do
 * not make it readable.
 */
int follow_fd(const struct follow *f);

size_t follow_count(const struct follow *f);
/* Position after the last delivered line of file i. */
void follow_position(const struct follow *f, size_t i, struct log_position *out);

/*
 * The positions follow_position gives now are committed (call it after the
 * caller's COMMIT, and once at start for the positions passed to
 * follow_add).  From the first call on, a file that rotated is not left
 * while it has delivered lines after its committed position: follow_read
 * delivers the old file to its end, then (follow_wait returning at once)
 * switches to the new one only in a read after the next follow_committed.
 * So a caller that calls this must commit between reads.  Without it (replay,
 * tests) a rotation is followed at once.
 */
void follow_committed(struct follow *f);

/* Whether the last follow_read stopped at a rotation that waits for
 * follow_committed (the caller should commit now: until then the new file
 * is not read). */
bool follow_waits_commit(const struct follow *f);

/*
 * Go back to pos (a position follow_position gave earlier for file i: the
 * last one committed) so the lines after it are delivered again: after a
 * batch the database refused.  If the file open now is the one pos names,
 * the same descriptor seeks back (a rename since does not matter), unless
 * the file was truncated or rewritten meanwhile (its size is below pos, or
 * its first line no longer hashes to pos's: copytruncate and a refill while
 * the batch waited): then it is read again from 0, as all of it is new.
 * If pos is where the file before the open one ended (the batch began right
 * after a rotation, which follow_committed made wait for that commit), the
 * open one is read again from 0.  Otherwise the file is closed and pos is
 * applied as a resume position when the path is next opened, as at start.
 * Returns 0, or -1 on error (the file is then closed, and reopened later
 * with pos as its resume position).
 */
int follow_rewind(struct follow *f, size_t i, const struct log_position *pos);

/*
 * The position of path's end (after its last complete line), as
 * follow_position would give it had every line been delivered: passed to
 * follow_add, reading starts with the next line written.  For a source
 * taking over from another that held the same lines (log = auto, see
 * daemon.c).  Returns 1, 0 if path is missing or not a regular file, or -1
 * on error (logged).
 */
int follow_end_position(const char *path, struct log_position *out);

/* Lines skipped because they were longer than FOLLOW_LINE_MAX. */
uint64_t follow_skipped_lines(const struct follow *f);

/* FNV-1a 64 of a first line, as stored in log positions. */
uint64_t follow_hash_line(const char *s, size_t len);

#endif
