/*
 * The control socket's server side (mgmt_ctl.h): a Unix stream socket, one JSON request per line
 * in, one JSON reply per line out, the caller identified by SO_PEERCRED and held to the roles the
 * people map gives it; descriptors passed with a request (SCM_RIGHTS) are the action's to take.
 *
 * An event loop over many connections (invariant 7: no client, slow or hostile, delays another
 * or a deadline). Nothing here blocks: sockets are non-blocking, every connection has its own
 * read buffer (capped at MGMT_CTL_REQUEST_MAX), each request has a deadline counted from when the
 * connection became ready for it (bytes do not extend it), each reply its own write deadline,
 * each connection a total lifetime and request count, and each uid and the whole socket a cap on
 * open connections. One pass of mgmt_ctl_serve() does at most one read and one request per
 * connection, so its cost is bounded by CTL_CONNS_MAX requests, each a bounded database action;
 * camera.probe, the one slow action, runs on a worker thread (mgmt_ctl_probe.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_log.h"

#define CTL_MAX_REQUESTS_PER_CONNECTION 64
#define CTL_REQUEST_DEADLINE_MS 5000   /* to send a whole request line, from accept or the last reply */
#define CTL_REPLY_DEADLINE_MS 5000     /* for the client to take its reply */
#define CTL_CONNECTION_LIFETIME_MS 60000 /* all requests of one connection, probes included */
#define CTL_ACCEPTS_PER_PASS 32        /* a connect flood cannot hold one pass */

struct ctl_conn {
	int fd;
	uint32_t uid;
	char *in;                      /* MGMT_CTL_REQUEST_MAX + 1 bytes */
	size_t have;
	char *out;                     /* the reply being written, with its newline */
	size_t out_len, out_off;
	uint64_t deadline_ns;          /* of the request being read, or of the reply being written */
	uint64_t closes_ns;            /* the connection's lifetime */
	unsigned served;
	bool waiting;                  /* its request runs on the probe worker */
	bool last;                     /* close once this reply is out */
	int fds[MGMT_CTL_FDS_MAX];     /* passed with the request being read; not yet taken: >= 0 */
	unsigned n_fds;
};

int mgmt_ctl_take_fd(struct mgmt_ctl *ctl, unsigned i)
{
	int fd;

	if (i >= ctl->n_fds || ctl->fds[i] < 0)
		return -EBADF;
	fd = ctl->fds[i];
	ctl->fds[i] = -1;
	return fd;
}

static void close_fds(int *fds, unsigned *n)
{
	for (unsigned i = 0; i < *n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	*n = 0;
}

/* recv() that also collects descriptors passed with the bytes (at most MGMT_CTL_FDS_MAX a request). */
static ssize_t recv_fds(struct ctl_conn *c, void *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * MGMT_CTL_FDS_MAX)];
	} ctrl;
	struct iovec iov = { buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.space,
			      .msg_controllen = sizeof(ctrl.space) };
	ssize_t n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	for (struct cmsghdr *h = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; h; h = CMSG_NXTHDR(&msg, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int got[MGMT_CTL_FDS_MAX];

		memcpy(got, CMSG_DATA(h), (k < MGMT_CTL_FDS_MAX ? k : MGMT_CTL_FDS_MAX) * sizeof(int));
		for (size_t i = 0; i < k && i < MGMT_CTL_FDS_MAX; i++) {
			if (c->n_fds < MGMT_CTL_FDS_MAX)
				c->fds[c->n_fds++] = got[i];
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
	struct epoll_event ev = { .events = EPOLLIN };
	struct mgmt_ctl *ctl;
	int rc;

	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	ctl->db = db;
	ctl->people = people;
	ctl->fd = -1;
	ctl->ep = -1;
	ctl->probe_efd = -1;
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
	/* A socket someone still answers on belongs to a live vigild (of another state directory):
	 * never take it from under it. One no one answers on is a crashed vigild's, and is replaced. */
	if (connect(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		rc = vg_errf(err, errlen, -EADDRINUSE, "%s: another vigild is listening on it", path);
		goto out_free_ctl;
	}
	close(ctl->fd);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ctl->ep = epoll_create1(EPOLL_CLOEXEC);
	if (ctl->fd < 0 || ctl->ep < 0) {
		rc = vg_errf(err, errlen, -errno, "%s: %s", path, vg_strerror(-errno));
		goto out_free_ctl;
	}
	unlink(path); /* a stale socket from a crashed vigild */
	if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
	    listen(ctl->fd, 64) < 0) {
		rc = vg_errf(err, errlen, -errno, "%s: %s", path, vg_strerror(-errno));
		goto out_free_ctl;
	}
	ctl->bound = true;
	ev.data.ptr = NULL; /* NULL: the listening socket */
	if (epoll_ctl(ctl->ep, EPOLL_CTL_ADD, ctl->fd, &ev) < 0 || (rc = mgmt_ctl_probe_init(ctl)) < 0) {
		rc = vg_errf(err, errlen, -errno, "%s: epoll: %s", path, vg_strerror(-errno));
		goto out_free_ctl;
	}
	*out = ctl;
	return 0;

out_free_ctl:
	if (ctl->bound)
		unlink(path);
	if (ctl->ep >= 0)
		close(ctl->ep);
	if (ctl->fd >= 0)
		close(ctl->fd);
	free(ctl->path);
	free(ctl);
	return rc;
}

static void conn_close(struct mgmt_ctl *ctl, unsigned i)
{
	struct ctl_conn *c = ctl->conns[i];

	if (ctl->probe_conn == c)
		ctl->probe_conn = NULL; /* the probe finishes and is audited; its reply has nowhere to go */
	close_fds(c->fds, &c->n_fds);
	/* Explicitly: close() alone leaves the registration while a forked child still holds the fd. */
	epoll_ctl(ctl->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	ctl->conns[i] = ctl->conns[--ctl->n_conns];
}

void mgmt_ctl_close(struct mgmt_ctl **pctl)
{
	struct mgmt_ctl *ctl = *pctl;

	if (!ctl)
		return;
	mgmt_ctl_probe_fini(ctl); /* waits for a running probe: at most its seconds and its connect */
	while (ctl->n_conns)
		conn_close(ctl, ctl->n_conns - 1);
	mgmt_ctl_refusals_flush(ctl, UINT64_MAX);
	if (ctl->ep >= 0)
		close(ctl->ep);
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (ctl->bound)
		unlink(ctl->path);
	free(ctl->path);
	free(ctl);
	*pctl = NULL;
}

int mgmt_ctl_fd(const struct mgmt_ctl *ctl)
{
	return ctl->ep;
}

/* Point C's epoll interest at what it waits for: a request, its reply's room, or nothing (a probe). */
static void conn_watch(struct mgmt_ctl *ctl, struct ctl_conn *c)
{
	struct epoll_event ev = { .events = c->waiting ? 0 : c->out ? EPOLLOUT : EPOLLIN, .data.ptr = c };

	epoll_ctl(ctl->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* A short line to a connection about to be dropped: best effort, never waits. */
static void send_refusal(int fd, int rc, const char *why)
{
	char *line = mgmt_ctl_reply_error(rc, why);

	if (line) {
		size_t n = strlen(line);

		send(fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		free(line);
	}
}

static void accept_some(struct mgmt_ctl *ctl, uint64_t now)
{
	for (int k = 0; k < CTL_ACCEPTS_PER_PASS; k++) {
		struct ucred cred;
		socklen_t cred_len = sizeof(cred);
		unsigned same = 0;
		char why[128];
		int fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return; /* EAGAIN: none left; EMFILE and the like: the next pass tries again */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0) {
			close(fd);
			continue;
		}
		for (unsigned i = 0; i < ctl->n_conns; i++)
			same += ctl->conns[i]->uid == cred.uid;
		if (same >= MGMT_CTL_CONNS_PER_UID || ctl->n_conns >= MGMT_CTL_CONNS_MAX) {
			snprintf(why, sizeof(why), "too many connections %s (at most %u)",
				 same >= MGMT_CTL_CONNS_PER_UID ? "from your uid" : "to vigild",
				 same >= MGMT_CTL_CONNS_PER_UID ? MGMT_CTL_CONNS_PER_UID : MGMT_CTL_CONNS_MAX);
			send_refusal(fd, -EBUSY, why);
			close(fd);
			ctl->refused_conns++;
			continue;
		}
		struct ctl_conn *c = calloc(1, sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN };

		if (!c || !(c->in = malloc(MGMT_CTL_REQUEST_MAX + 1))) {
			free(c);
			close(fd);
			return;
		}
		c->fd = fd;
		c->uid = cred.uid;
		c->deadline_ns = now + CTL_REQUEST_DEADLINE_MS * VG_NS_PER_MS;
		c->closes_ns = now + CTL_CONNECTION_LIFETIME_MS * VG_NS_PER_MS;
		ev.data.ptr = c;
		if (epoll_ctl(ctl->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(c->in);
			free(c);
			close(fd);
			return;
		}
		ctl->conns[ctl->n_conns++] = c;
	}
}

/* Write what the socket takes of C's reply now. Returns 1 when all of it is out, 0 for more, -errno. */
static int conn_write(struct ctl_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno == EINTR ? 0 : -errno;
		c->out_off += (size_t)w;
	}
	return 1;
}

/* C's reply is all out: ready for its next request, with a deadline of its own, or done. */
static int conn_reply_done(struct mgmt_ctl *ctl, struct ctl_conn *c, uint64_t now)
{
	free(c->out);
	c->out = NULL;
	c->served++;
	if (c->last || c->served >= CTL_MAX_REQUESTS_PER_CONNECTION)
		return -ECONNRESET;
	c->deadline_ns = now + CTL_REQUEST_DEADLINE_MS * VG_NS_PER_MS;
	conn_watch(ctl, c);
	return 0;
}

/* Queue REPLY (taken) on C, write what goes now. Returns -errno when C is to be closed. */
static int conn_reply(struct mgmt_ctl *ctl, struct ctl_conn *c, char *reply, uint64_t now)
{
	size_t n = reply ? strlen(reply) : 0;
	char *line = reply ? realloc(reply, n + 2) : NULL;
	int rc;

	if (!line) {
		free(reply);
		return -ENOMEM;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	c->out = line;
	c->out_len = n + 1;
	c->out_off = 0;
	c->waiting = false;
	c->deadline_ns = now + CTL_REPLY_DEADLINE_MS * VG_NS_PER_MS;
	ctl->answered++;
	rc = conn_write(c);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		conn_watch(ctl, c); /* the rest when the client makes room, before the reply's deadline */
		return 0;
	}
	return conn_reply_done(ctl, c, now);
}

/* Run the first request line in C's buffer, if there is one. Returns -errno when C is to be closed. */
static int conn_request(struct mgmt_ctl *ctl, struct ctl_conn *c, uint64_t now)
{
	char *nl = memchr(c->in, '\n', c->have), *reply = NULL, anon[32];
	struct mgmt_actor who;
	int rc;

	if (!nl) {
		if (c->have <= MGMT_CTL_REQUEST_MAX)
			return 0;
		/* The rest of an oversized request cannot be framed: answer, then drop the connection. */
		c->last = true;
		return conn_reply(ctl, c, mgmt_ctl_reply_error(-E2BIG, "request longer than 65536 bytes"), now);
	}
	if (mgmt_people_lookup(ctl->people, c->uid, &who) < 0) {
		snprintf(anon, sizeof(anon), "uid:%u", c->uid);
		who = (struct mgmt_actor){ anon, c->uid, 0 };
	}
	/* The action sees this request's descriptors, and only them. */
	memcpy(ctl->fds, c->fds, sizeof(c->fds));
	ctl->n_fds = c->n_fds;
	c->n_fds = 0;
	ctl->request_conn = c;
	rc = mgmt_ctl_handle(ctl, &who, c->in, (size_t)(nl - c->in), &reply);
	ctl->request_conn = NULL;
	close_fds(ctl->fds, &ctl->n_fds);
	c->have -= (size_t)(nl + 1 - c->in);
	memmove(c->in, nl + 1, c->have);
	if (rc == -EINPROGRESS && !reply) {
		/* The probe worker has it (mgmt_ctl_probe.c); its reply comes through mgmt_ctl_conn_reply(). */
		c->waiting = true;
		conn_watch(ctl, c);
		return 0;
	}
	return conn_reply(ctl, c, reply, now);
}

/* A readable connection: take what came, and run a request if a whole line is here. */
static int conn_read(struct mgmt_ctl *ctl, struct ctl_conn *c, uint64_t now)
{
	ssize_t n;

	if (c->out || c->waiting)
		return 0; /* one request at a time: what follows waits in the socket */
	n = recv_fds(c, c->in + c->have, MGMT_CTL_REQUEST_MAX + 1 - c->have);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	c->have += (size_t)n;
	return conn_request(ctl, c, now);
}

void mgmt_ctl_conn_reply(struct mgmt_ctl *ctl, void *conn, char *reply)
{
	uint64_t now = vg_clock_ns();

	for (unsigned i = 0; i < ctl->n_conns; i++) {
		if (ctl->conns[i] != conn)
			continue;
		if (conn_reply(ctl, ctl->conns[i], reply, now) < 0)
			conn_close(ctl, i);
		return;
	}
	free(reply); /* the client left while it ran */
}

static unsigned find_conn(const struct mgmt_ctl *ctl, const struct ctl_conn *c)
{
	for (unsigned i = 0; i < ctl->n_conns; i++)
		if (ctl->conns[i] == c)
			return i;
	return UINT32_MAX;
}

/* Close whatever ran past a deadline; run requests already buffered (pipelined) behind a reply. */
static void sweep(struct mgmt_ctl *ctl, uint64_t now)
{
	for (unsigned i = 0; i < ctl->n_conns;) {
		struct ctl_conn *c = ctl->conns[i];
		int rc = 0;

		if (now >= c->closes_ns || (!c->waiting && now >= c->deadline_ns)) {
			if (!c->out && !c->waiting)
				send_refusal(c->fd, -ETIMEDOUT, "request not complete in time: closed");
			ctl->timed_out++;
			conn_close(ctl, i);
			continue;
		}
		if (!c->out && !c->waiting && memchr(c->in, '\n', c->have))
			rc = conn_request(ctl, c, now);
		if (rc < 0) {
			conn_close(ctl, i);
			continue;
		}
		i++;
	}
}

int mgmt_ctl_serve(struct mgmt_ctl *ctl, int timeout_ms)
{
	struct epoll_event evs[64];
	uint64_t before = ctl->answered, now;
	int n;

	if (ctl->ep < 0)
		return -EBADF;
	n = epoll_wait(ctl->ep, evs, VG_ARRAY_SIZE(evs), timeout_ms);
	if (n < 0 && errno != EINTR)
		return -errno;
	now = vg_clock_ns();
	for (int k = 0; k < n; k++) {
		struct ctl_conn *c = evs[k].data.ptr;
		unsigned i;
		int rc;

		if (!c) {
			accept_some(ctl, now);
			continue;
		}
		if (c == (void *)&ctl->probe_efd) {
			mgmt_ctl_probe_done(ctl);
			continue;
		}
		if ((i = find_conn(ctl, c)) == UINT32_MAX)
			continue; /* closed earlier in this pass */
		if (c->out) {
			rc = evs[k].events & (EPOLLERR | EPOLLHUP) ? -EPIPE : conn_write(c);
			if (rc == 1)
				rc = conn_reply_done(ctl, c, now);
		} else {
			rc = conn_read(ctl, c, now);
		}
		if (rc < 0)
			conn_close(ctl, i);
	}
	sweep(ctl, now);
	mgmt_ctl_refusals_flush(ctl, now);
	return (int)(ctl->answered - before);
}

int mgmt_ctl_timeout_ms(const struct mgmt_ctl *ctl)
{
	uint64_t now = vg_clock_ns(), next = UINT64_MAX;

	for (unsigned i = 0; i < ctl->n_conns; i++) {
		const struct ctl_conn *c = ctl->conns[i];

		if (!c->out && !c->waiting && memchr(c->in, '\n', c->have))
			return 0; /* a pipelined request is waiting */
		if (!c->waiting && c->deadline_ns < next)
			next = c->deadline_ns;
		if (c->closes_ns < next)
			next = c->closes_ns;
	}
	next = mgmt_ctl_refusals_next(ctl, next);
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)((next - now + VG_NS_PER_MS - 1) / VG_NS_PER_MS);
}
