/*
 * The control socket (mgmt_ctl.h): a Unix stream socket, one JSON request per line in, one JSON
 * reply per line out, the caller identified by SO_PEERCRED and held to the roles the people map
 * gives it; descriptors passed with a request (SCM_RIGHTS) are the action's to take. Also the
 * client side that vigilctl uses.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"
#include "vg_log.h"

#define CTL_MAX_REQUESTS_PER_CONNECTION 64
#define CTL_IDLE_TIMEOUT_S 5
#define CTL_REPLY_MAX (1u << 20)

int mgmt_ctl_take_fd(struct mgmt_ctl *ctl, unsigned i)
{
	int fd;

	if (i >= ctl->n_fds || ctl->fds[i] < 0)
		return -EBADF;
	fd = ctl->fds[i];
	ctl->fds[i] = -1;
	return fd;
}

/* Close the descriptors passed with a request that its action did not take. */
static void drop_fds(struct mgmt_ctl *ctl)
{
	for (unsigned i = 0; i < ctl->n_fds; i++)
		if (ctl->fds[i] >= 0)
			close(ctl->fds[i]);
	ctl->n_fds = 0;
}

/* recv() that also collects descriptors passed with the bytes (at most MGMT_CTL_FDS_MAX a request). */
static ssize_t recv_fds(struct mgmt_ctl *ctl, int fd, void *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * MGMT_CTL_FDS_MAX)];
	} ctrl;
	struct iovec iov = { buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.space,
			      .msg_controllen = sizeof(ctrl.space) };
	ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);

	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int got[MGMT_CTL_FDS_MAX];

		memcpy(got, CMSG_DATA(c), (k < MGMT_CTL_FDS_MAX ? k : MGMT_CTL_FDS_MAX) * sizeof(int));
		for (size_t i = 0; i < k && i < MGMT_CTL_FDS_MAX; i++) {
			if (ctl->n_fds < MGMT_CTL_FDS_MAX)
				ctl->fds[ctl->n_fds++] = got[i];
			else
				close(got[i]); /* more than a request may pass: not kept open on the client's behalf */
		}
	}
	return n;
}

int mgmt_ctl_open(struct mgmt_ctl **out, struct mgmt_db *db, const struct mgmt_people *people, const char *path,
		  char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mgmt_ctl *ctl;
	int rc;

	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	ctl->db = db;
	ctl->people = people;
	ctl->fd = -1;
	if (!path) {
		*out = ctl;
		return 0;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		rc = vg_errf(err, errlen, -ENAMETOOLONG, "%s: socket path too long", path);
		goto out_free_ctl;
	}
	strcpy(sa.sun_path, path);
	ctl->path = strdup(path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ctl->path || ctl->fd < 0) {
		rc = vg_errf(err, errlen, -errno, "%s: %s", path, vg_strerror(-errno));
		goto out_free_ctl;
	}
	unlink(path); /* a stale socket from a crashed vigild */
	if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 || listen(ctl->fd, 16) < 0) {
		rc = vg_errf(err, errlen, -errno, "%s: %s", path, vg_strerror(-errno));
		goto out_free_ctl;
	}
	*out = ctl;
	return 0;

out_free_ctl:
	if (ctl->fd >= 0)
		close(ctl->fd);
	free(ctl->path);
	free(ctl);
	return rc;
}

void mgmt_ctl_close(struct mgmt_ctl **pctl)
{
	struct mgmt_ctl *ctl = *pctl;

	if (!ctl)
		return;
	if (ctl->fd >= 0) {
		close(ctl->fd);
		unlink(ctl->path);
	}
	free(ctl->path);
	free(ctl);
	*pctl = NULL;
}

int mgmt_ctl_fd(const struct mgmt_ctl *ctl)
{
	return ctl->fd;
}

static int send_line(int fd, const char *s)
{
	size_t len = strlen(s), done = 0;

	while (done < len + 1) {
		/* The reply and its newline, without raising SIGPIPE if the client went away. */
		const char *buf = done < len ? s + done : "\n";
		size_t n = done < len ? len - done : 1;
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)w;
	}
	return 0;
}

int mgmt_ctl_serve_one(struct mgmt_ctl *ctl, int timeout_ms)
{
	struct pollfd pfd = { .fd = ctl->fd, .events = POLLIN };
	struct timeval idle = { .tv_sec = CTL_IDLE_TIMEOUT_S };
	struct ucred cred;
	socklen_t cred_len = sizeof(cred);
	char *buf;
	size_t have = 0;
	int fd, served = 0, rc;

	rc = poll(&pfd, 1, timeout_ms);
	if (rc == 0)
		return -ETIMEDOUT;
	if (rc < 0)
		return -errno;
	fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0) {
		rc = -errno;
		goto out_close;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
	buf = malloc(MGMT_CTL_REQUEST_MAX + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close;
	}

	while (served < CTL_MAX_REQUESTS_PER_CONNECTION) {
		char *nl = memchr(buf, '\n', have), *reply = NULL;

		if (!nl) {
			if (have > MGMT_CTL_REQUEST_MAX) {
				reply = mgmt_ctl_reply_error(-E2BIG, "request longer than 65536 bytes");
				send_line(fd, reply);
				free(reply);
				served++;
				break; /* the rest of an oversized request cannot be framed: drop the connection */
			}
			ssize_t n = recv_fds(ctl, fd, buf + have, MGMT_CTL_REQUEST_MAX + 1 - have);
			if (n <= 0)
				break; /* closed, idle timeout, or error */
			have += (size_t)n;
			continue;
		}

		struct mgmt_actor who;
		char anon[32];
		if (mgmt_people_lookup(ctl->people, cred.uid, &who) < 0) {
			snprintf(anon, sizeof(anon), "uid:%u", cred.uid);
			who = (struct mgmt_actor){ anon, cred.uid, 0 };
		}
		mgmt_ctl_handle(ctl, &who, buf, (size_t)(nl - buf), &reply);
		drop_fds(ctl);
		rc = reply ? send_line(fd, reply) : -ENOMEM;
		free(reply);
		served++;
		have -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, have);
		if (rc < 0)
			break;
	}
	free(buf);
	rc = served;
out_close:
	drop_fds(ctl);
	close(fd);
	return rc;
}

/* The request's first byte carries the descriptors (SCM_RIGHTS), the rest follows as a line. */
static int send_fds(int fd, const char *s, const int *fds, unsigned n_fds)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * MGMT_CTL_FDS_MAX)];
	} ctrl;
	struct iovec iov = { (void *)s, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.space,
			      .msg_controllen = CMSG_SPACE(sizeof(int) * n_fds) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	memset(ctrl.space, 0, sizeof(ctrl.space));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return send_line(fd, s + 1);
}

int mgmt_ctl_call(const char *path, const char *request, char **reply, char *err, size_t errlen)
{
	return mgmt_ctl_call_fds(path, request, NULL, 0, reply, err, errlen);
}

int mgmt_ctl_call_fds(const char *path, const char *request, const int *fds, unsigned n_fds, char **reply, char *err,
		      size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t have = 0, cap = 4096;
	char *buf;
	int fd, rc;

	*reply = NULL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return vg_errf(err, errlen, -ENAMETOOLONG, "%s: socket path too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vg_errf(err, errlen, -errno, "socket: %s", vg_strerror(-errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = vg_errf(err, errlen, -errno, "cannot reach vigild at %s: %s", path, vg_strerror(-errno));
		goto out_close;
	}
	/* A failed send is not the end: vigild may have refused the request (too long) with a reply
	 * that is already waiting to be read. */
	if (n_fds > MGMT_CTL_FDS_MAX || (n_fds && !request[0])) {
		rc = vg_errf(err, errlen, -EINVAL, "at most %d descriptors go with a request", MGMT_CTL_FDS_MAX);
		goto out_close;
	}
	int send_rc = n_fds ? send_fds(fd, request, fds, n_fds) : send_line(fd, request);
	buf = malloc(cap);
	if (!buf) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_close;
	}
	for (;;) {
		if (have + 1 >= cap) {
			char *bigger = cap < CTL_REPLY_MAX ? realloc(buf, cap * 2) : NULL;
			if (!bigger) {
				free(buf);
				rc = vg_errf(err, errlen, -E2BIG, "vigild's reply is longer than %u bytes", CTL_REPLY_MAX);
				goto out_close;
			}
			buf = bigger;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
		if (n <= 0) {
			free(buf);
			if (send_rc < 0)
				rc = vg_errf(err, errlen, send_rc, "sending to vigild: %s", vg_strerror(send_rc));
			else
				rc = vg_errf(err, errlen, -ECONNRESET, "vigild closed the connection without a reply");
			goto out_close;
		}
		have += (size_t)n;
		char *nl = memchr(buf, '\n', have);
		if (nl) {
			*nl = '\0';
			*reply = buf;
			rc = 0;
			break;
		}
	}
out_close:
	close(fd);
	return rc;
}
