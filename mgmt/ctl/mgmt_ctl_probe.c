/*
 * camera.probe off the management loop (mgmt_ctl_int.h): a probe listens to a camera for up to
 * 10 s, which on the loop thread would hold every other client and every deployment deadline
 * (invariant 7). The action reads the camera and unseals its credentials on the loop thread (the
 * database handle is that thread's), then hands a self-contained job to one worker thread; the
 * worker touches nothing but the job and the probe function, and says it is done on an eventfd
 * the loop polls; the loop joins it, audits and replies. One probe at a time: a second is refused
 * with EBUSY rather than queued, so probes cannot pile up threads or camera sessions.
 */
#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"

int mgmt_ctl_probe_init(struct mgmt_ctl *ctl)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ctl->probe_efd };

	ctl->probe_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl->probe_efd < 0)
		return -errno;
	if (epoll_ctl(ctl->ep, EPOLL_CTL_ADD, ctl->probe_efd, &ev) < 0) {
		close(ctl->probe_efd);
		ctl->probe_efd = -1;
		return -errno;
	}
	return 0;
}

static void *probe_worker(void *arg)
{
	struct mgmt_ctl *ctl = arg;
	uint64_t one = 1;

	mgmt_ctl_probe_run(&ctl->probe_job);
	/* The eventfd is the loop's signal; pthread_join() there orders the job's results before their reads. */
	if (write(ctl->probe_efd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd write of 1 cannot fail short of a bug; the loop would wait forever */
	return NULL;
}

int mgmt_ctl_probe_submit(struct mgmt_ctl *ctl, const struct mgmt_ctl_probe *job, char *err, size_t errlen)
{
	int rc;

	if (ctl->probe_running)
		return vg_errf(err, errlen, -EBUSY, "another camera probe is running; try again when it ends");
	ctl->probe_job = *job;
	ctl->probe_conn = ctl->request_conn;
	rc = pthread_create(&ctl->probe_thread, NULL, probe_worker, ctl);
	if (rc != 0) {
		sodium_memzero(&ctl->probe_job, sizeof(ctl->probe_job));
		ctl->probe_conn = NULL;
		return vg_errf(err, errlen, -rc, "cannot start the probe: %s", vg_strerror(-rc));
	}
	ctl->probe_running = true;
	return -EINPROGRESS;
}

void mgmt_ctl_probe_done(struct mgmt_ctl *ctl)
{
	uint64_t n;
	json_t *result = NULL;
	char err[512] = "", *reply;
	int rc;

	if (read(ctl->probe_efd, &n, sizeof(n)) != sizeof(n) || !ctl->probe_running)
		return;
	pthread_join(ctl->probe_thread, NULL);
	ctl->probe_running = false;
	rc = mgmt_ctl_probe_finish(ctl, &ctl->probe_job, &result, err, sizeof(err));
	sodium_memzero(&ctl->probe_job, sizeof(ctl->probe_job));
	reply = rc < 0 ? mgmt_ctl_reply_error(rc, err[0] ? err : vg_strerror(rc)) : mgmt_ctl_reply_ok(result);
	mgmt_ctl_conn_reply(ctl, ctl->probe_conn, reply);
	ctl->probe_conn = NULL;
}

void mgmt_ctl_probe_fini(struct mgmt_ctl *ctl)
{
	if (ctl->probe_running) {
		uint64_t n;

		pthread_join(ctl->probe_thread, NULL);
		if (read(ctl->probe_efd, &n, sizeof(n)) == sizeof(n)) {
			json_t *result = NULL;
			char err[512];

			/* Finished as vigild stops: audited like any other, the reply has no one left to go to. */
			mgmt_ctl_probe_finish(ctl, &ctl->probe_job, &result, err, sizeof(err));
			json_decref(result);
		}
		ctl->probe_running = false;
		sodium_memzero(&ctl->probe_job, sizeof(ctl->probe_job));
	}
	if (ctl->probe_efd >= 0)
		close(ctl->probe_efd);
	ctl->probe_efd = -1;
}
