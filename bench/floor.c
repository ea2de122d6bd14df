/*
 * floor - the least a follower that reads each line as it comes can do:
 * sleep in poll(2) on an inotify watch of the log, read the event, read the
 * new bytes, count the lines, sleep again.  No parsing, no database.  Its
 * CPU in bench/live.py is what the machine charges for one wake-up per
 * appended line (as cat is the floor of the replay table).
 *
 *   floor LOG      runs until SIGTERM, then prints the lines it read
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	_Alignas(struct inotify_event) char events[4096];
	char buf[65536];
	struct sigaction sa;
	unsigned long lines = 0;
	int ifd, fd;

	if (argc != 2) {
		fprintf(stderr, "usage: floor LOG\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	if (sigaction(SIGTERM, &sa, NULL) != 0)
		return 1;
	if ((ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
	    inotify_add_watch(ifd, argv[1], IN_MODIFY) < 0 ||
	    (fd = open(argv[1], O_RDONLY | O_CLOEXEC | O_NOATIME)) < 0 ||
	    lseek(fd, 0, SEEK_END) < 0) {
		perror(argv[1]);
		return 1;
	}
	while (!stop) {
		struct pollfd p = { ifd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (read(ifd, events, sizeof(events)) < 0 && errno != EAGAIN) {
			perror("read inotify");
			return 1;
		}
		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			for (char *q = buf; (q = memchr(q, '\n', (size_t)(buf + n - q))) != NULL; q++)
				lines++;
			if ((size_t)n < sizeof(buf))
				break;
		}
	}
	printf("%lu lines\n", lines);
	return 0;
}
