/* vigild's management loop: what its files share (not for other parts of mgmt). Loop thread only. */
#ifndef MGMT_DAEMON_INT_H
#define MGMT_DAEMON_INT_H

#include <sys/types.h>

#include "mgmt_ctl.h"
#include "mgmt_daemon.h"

/*
 * vigild serve's live pipeline (mgmt_daemon_capture.c): a `vigild run` child over the cameras
 * while a deployment is active. The daemon loop calls mgmt_capture_tick() once a second.
 */
struct mgmt_capture {
	pid_t pid;               /* 0: none running */
	int64_t deployment;      /* what the child matches for */
	char cameras_sig[65];    /* the camera set it was started with (a change restarts it) */
	int64_t started_s, next_try_s;
	unsigned backoff_s, starts, failures;
	char report[512];        /* where the child writes its report when it stops */
	char why[192];           /* why none runs, or what it left out ("" when all is well) */
};
void mgmt_capture_tick(struct mgmt_capture *cap, struct mgmt_db *db, const struct mgmt_daemon_conf *conf,
		       int64_t now_s);
/* Stop the child (SIGTERM, SIGKILL after 10 s), audited with WHY. No-op without one. */
void mgmt_capture_stop(struct mgmt_capture *cap, struct mgmt_db *db, const char *why);
/* The purge hook vigild installs: stop the capture of the deployment that ends, then
 * mgmt_watchlist_purge_hook(). ARG: a struct mgmt_capture_purge. */
struct mgmt_capture_purge {
	struct mgmt_capture *cap;
	struct mgmt_db *db;
};
int mgmt_capture_purge_hook(void *arg, int64_t deployment_id, const char *watchlist_id);
/* What status shows of CAP (mgmt_capture_status_fn; ARG is the struct mgmt_capture). */
void mgmt_capture_status(void *arg, struct mgmt_capture_status *out);

#endif /* MGMT_DAEMON_INT_H */
