/*
 * The control socket's client side (mgmt_ctl.h): what vigilctl and the tests call. Every call
 * holds one deadline for all of it (connect, send, reply), so a vigild that is stuck, gone
 * half-way or trickling its reply costs the caller at most TIMEOUT_MS, never a hang.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"
#include "vg_clock.h"

#define CTL_REPLY_MAX (1u << 20)

/* Arm FD's send and receive timeouts with what is left until DEADLINE_NS; -ETIMEDOUT if nothing is. */
static int arm(int fd, uint64_t deadline_ns)
{
	uint64_t now = vg_clock_ns();
	struct timeval tv;

	if (now >= deadline_ns)
		return -ETIMEDOUT;
	uint64_t left = deadline_ns - now;
	tv.tv_sec = (time_t)(left / VG_NS_PER_SEC);
	tv.tv_usec = (suseconds_t)(left % VG_NS_PER_SEC / 1000);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1; /* zero would mean "no timeout" */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* A timed-out socket call says EAGAIN (EINPROGRESS for connect): say what it means. */
static int timed_out(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS ? -ETIMEDOUT : -e;
}

static int send_all(int fd, const char *buf, size_t len, uint64_t deadline_ns)
{
	size_t done = 0;

	while (done < len) {
		int rc = arm(fd, deadline_ns);
		if (rc < 0)
			return rc;
		/* Without raising SIGPIPE if vigild went away. */
		ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return timed_out(errno);
		}
		done += (size_t)w;
	}
	return 0;
}

static int send_line(int fd, const char *s, uint64_t deadline_ns)
{
	int rc = send_all(fd, s, strlen(s), deadline_ns);
	return rc < 0 ? rc : send_all(fd, "\n", 1, deadline_ns);
}

/* The request's first byte carries the descriptors (SCM_RIGHTS), the rest follows as a line. */
static int send_fds(int fd, const char *s, const int *fds, unsigned n_fds, uint64_t deadline_ns)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * MGMT_CTL_FDS_MAX)];
	} ctrl;
	struct iovec iov = { (void *)s, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.space,
			      .msg_controllen = CMSG_SPACE(sizeof(int) * n_fds) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	int rc;

	memset(ctrl.space, 0, sizeof(ctrl.space));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	do {
		if ((rc = arm(fd, deadline_ns)) < 0)
			return rc;
		if (sendmsg(fd, &msg, MSG_NOSIGNAL) >= 0)
			return send_line(fd, s + 1, deadline_ns);
	} while (errno == EINTR);
	return timed_out(errno);
}

int mgmt_ctl_call(const char *path, const char *request, char **reply, char *err, size_t errlen)
{
	return mgmt_ctl_call_fds(path, request, NULL, 0, MGMT_CTL_CALL_TIMEOUT_MS, reply, err, errlen);
}

/* Read the reply line; *REPLY gets it. */
static int read_reply(int fd, uint64_t deadline_ns, int send_rc, unsigned timeout_ms, char **reply, char *err,
		      size_t errlen)
{
	size_t have = 0, cap = 4096;
	char *buf = malloc(cap);
	int rc;

	if (!buf)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	for (;;) {
		if (have + 1 >= cap) {
			char *bigger = cap < CTL_REPLY_MAX ? realloc(buf, cap * 2) : NULL;
			if (!bigger) {
				free(buf);
				return vg_errf(err, errlen, -E2BIG, "vigild's reply is longer than %u bytes", CTL_REPLY_MAX);
			}
			buf = bigger;
			cap *= 2;
		}
		ssize_t n = (rc = arm(fd, deadline_ns)) < 0 ? -1 : recv(fd, buf + have, cap - 1 - have, 0);
		if (n < 0 && rc == 0 && errno == EINTR)
			continue;
		if (n < 0 && (rc < 0 || timed_out(errno) == -ETIMEDOUT)) {
			free(buf);
			return vg_errf(err, errlen, -ETIMEDOUT, "vigild did not answer within %u s", (timeout_ms + 999) / 1000);
		}
		if (n <= 0) {
			free(buf);
			if (send_rc < 0)
				return vg_errf(err, errlen, send_rc, "sending to vigild: %s", vg_strerror(send_rc));
			return vg_errf(err, errlen, -ECONNRESET, "vigild closed the connection without a reply");
		}
		have += (size_t)n;
		char *nl = memchr(buf, '\n', have);
		if (nl) {
			*nl = '\0';
			*reply = buf;
			return 0;
		}
	}
}

int mgmt_ctl_call_fds(const char *path, const char *request, const int *fds, unsigned n_fds, unsigned timeout_ms,
		      char **reply, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline_ns = vg_clock_ns() + (uint64_t)timeout_ms * VG_NS_PER_MS;
	int fd, rc;

	*reply = NULL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return vg_errf(err, errlen, -ENAMETOOLONG, "%s: socket path too long", path);
	if (n_fds > MGMT_CTL_FDS_MAX || (n_fds && !request[0]))
		return vg_errf(err, errlen, -EINVAL, "at most %d descriptors go with a request", MGMT_CTL_FDS_MAX);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vg_errf(err, errlen, -errno, "socket: %s", vg_strerror(-errno));
	/* A full backlog makes connect() wait: SO_SNDTIMEO bounds that wait on a Unix socket. */
	rc = arm(fd, deadline_ns);
	while (rc == 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		rc = timed_out(errno);
		if (rc == -ETIMEDOUT)
			rc = vg_errf(err, errlen, rc, "vigild at %s did not accept within %u s", path, (timeout_ms + 999) / 1000);
		else
			rc = vg_errf(err, errlen, rc, "cannot reach vigild at %s: %s", path, vg_strerror(rc));
		goto out_close;
	}
	if (rc < 0) {
		rc = vg_errf(err, errlen, rc, "vigild at %s: %s", path, vg_strerror(rc));
		goto out_close;
	}
	/* A failed send is not the end: vigild may have refused the request (too long) with a reply
	 * that is already waiting to be read. */
	int send_rc = n_fds ? send_fds(fd, request, fds, n_fds, deadline_ns) : send_line(fd, request, deadline_ns);
	rc = read_reply(fd, deadline_ns, send_rc, timeout_ms, reply, err, errlen);
out_close:
	close(fd);
	return rc;
}
