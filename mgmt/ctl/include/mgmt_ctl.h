/**
 * @file mgmt_ctl.h
 * The control socket and its one action table: how vigilctl (and the console) ask vigild to do
 * anything. Every verb is an entry {verb, roles, action, help}; the socket, mgmt_ctl_handle() and
 * every front end go through the same table, so no front end has a second path around the rules,
 * and every rule itself is the state library's (mgmt.h).
 *
 * Threads: a struct mgmt_ctl belongs to the thread that runs vigild's management loop (it holds
 * that thread's struct mgmt_db). The hooks lent with mgmt_ctl_set_*() are called on that thread,
 * except the probe (mgmt_ctl_set_probe), which runs on the control socket's one worker thread and
 * must touch nothing but its arguments.
 * mgmt_ctl_call() and mgmt_ctl_call_fds() (the client side) hold no state: any thread.
 */
#ifndef MGMT_CTL_H
#define MGMT_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mgmt.h"
#include "vg_conf.h"

/*
 * vigilctl and the console talk to vigild over a Unix stream socket: one request per line,
 * `{"verb":"deployment.create","args":{...}}`, at most MGMT_CTL_REQUEST_MAX bytes; one reply per
 * line, `{"ok":true,"result":...}` or `{"ok":false,"error":"one line","errno":"EPERM"}`. The
 * caller is who SO_PEERCRED says it is, mapped to roles by the people map; a request outside the
 * caller's roles is refused and audited. The same action table serves the socket and
 * mgmt_ctl_handle(), so the CLI and the API cannot disagree.
 *
 * Verbs: status; deployment.create|authorise|refuse|start|stop|show|list; audit.list|verify;
 * watchlist.add|list|show|remove|purge (mgmt_watchlist.c).
 * camera.add|list|remove|probe; config.get|set; retention.show|set; audit.export.
 */
#define MGMT_CTL_REQUEST_MAX 65536

struct mgmt_ctl;

/** Replace the people map (SIGHUP reload); PEOPLE must outlive its use. */
void mgmt_ctl_set_people(struct mgmt_ctl *ctl, const struct mgmt_people *people);

/** Called when a deployment ends, to purge its watchlists from the matcher and disk. */
void mgmt_ctl_set_purge(struct mgmt_ctl *ctl, mgmt_purge_fn *purge, void *arg);

/** Serve config.get over SET (its objects are the live settings) and config.set through APPLY. */
void mgmt_ctl_set_conf(struct mgmt_ctl *ctl, const struct vg_conf_set *set, mgmt_conf_apply_fn *apply, void *arg);

/** The longest deployment window deployment.create accepts (0: MGMT_DEPLOYMENT_WINDOW_DEFAULT_S). */
void mgmt_ctl_set_max_window(struct mgmt_ctl *ctl, int64_t max_window_s);

/**
 * The model vigild runs (MODEL_ID; NULL: unknown, watchlists' models are not checked), its
 * calibration (CALIB, lent: it must outlive the ctl; NULL: none, the expected false alerts are
 * "not stated"), and the policy limit on them per 1,000 faces (0: none). deployment.create judges
 * and records each request by them.
 */
void mgmt_ctl_set_model(struct mgmt_ctl *ctl, const char *model_id, const struct match_calib *calib,
			double max_expected_per_1000);

/** How camera.probe reaches a camera (called on a worker thread); NULL: camera.probe says this build cannot. */
void mgmt_ctl_set_probe(struct mgmt_ctl *ctl, mgmt_probe_fn *probe);

/**
 * Listen on SOCKET_PATH (replacing a stale socket file). The socket is world-connectable: who
 * may do what is decided per request by uid. SOCKET_PATH NULL: no socket, mgmt_ctl_handle() only
 * (tests, vigilctl's offline verbs). Returns 0 or -errno with ERR.
 */
int mgmt_ctl_open(struct mgmt_ctl **out, struct mgmt_db *db, const struct mgmt_people *people, const char *socket_path,
		  char *err, size_t errlen);
/** Close the socket and unlink its path; sets *CTL to NULL. */
void mgmt_ctl_close(struct mgmt_ctl **ctl);
/**
 * For the caller's poll loop: a descriptor (an epoll set) that is readable when mgmt_ctl_serve()
 * has work (a connection, a request, room for a reply, a finished probe).
 */
int mgmt_ctl_fd(const struct mgmt_ctl *ctl);

/**
 * Serve every connection that is ready, waiting at most TIMEOUT_MS for one (0: do not wait),
 * without ever blocking on a client (invariant 7): sockets are non-blocking; a request must
 * arrive whole within 5 s of the connection being ready for it (bytes sent do not extend that),
 * a reply be taken within 5 s, a connection ends after 64 requests or 60 s; a uid holds at most
 * 8 connections, vigild 128 (beyond that a connection gets one EBUSY line and is closed). One
 * call runs at most one request per connection; camera.probe runs on a worker thread, one at a
 * time (a second gets EBUSY). Refusals are audited the first per uid per minute, then one entry
 * with the count of the rest when the minute ends. Returns the number of replies queued, or -errno.
 */
int mgmt_ctl_serve(struct mgmt_ctl *ctl, int timeout_ms);

/**
 * How long the caller's poll may wait before mgmt_ctl_serve() has a deadline to enforce (a slow
 * client to drop, a refusal count to audit), in ms; 0: now; -1: none.
 */
int mgmt_ctl_timeout_ms(const struct mgmt_ctl *ctl);

/**
 * Run one request as WHO without a socket. *REPLY gets a malloc'd, NUL-terminated JSON line
 * (the caller frees it). Returns 0 when the verb succeeded, else its -errno (the reply says why).
 */
int mgmt_ctl_handle(struct mgmt_ctl *ctl, const struct mgmt_actor *who, const char *request, size_t len,
		    char **reply /* OUT */);

/**
 * Client side: send REQUEST (one JSON object) to SOCKET_PATH and read the reply line, all within
 * MGMT_CTL_CALL_TIMEOUT_MS (-ETIMEDOUT with a one-line reason when vigild does not answer).
 */
#define MGMT_CTL_CALL_TIMEOUT_MS 30000
int mgmt_ctl_call(const char *socket_path, const char *request, char **reply /* OUT */, char *err, size_t errlen);
/**
 * mgmt_ctl_call() with its own TIMEOUT_MS that also passes N_FDS (at most MGMT_CTL_FDS_MAX) open descriptors with the
 * request (SCM_RIGHTS): how vigilctl hands vigild a file that vigild, with its capabilities
 * dropped, could not open itself. The caller keeps its descriptors.
 */
#define MGMT_CTL_FDS_MAX 2
int mgmt_ctl_call_fds(const char *socket_path, const char *request, const int *fds, unsigned n_fds,
		      unsigned timeout_ms, char **reply /* OUT */, char *err, size_t errlen);

/** Called after a review is recorded, to apply its outcome to the evidence store (may be NULL). */
void mgmt_ctl_set_outcome(struct mgmt_ctl *ctl, mgmt_outcome_fn *fn, void *arg);

/* What status shows of the live pipeline that vigild serve supervises. */
struct mgmt_capture_status {
	bool running;
	int pid;
	int64_t deployment;     /* what it matches for */
	int64_t since_s;        /* when it started */
	unsigned starts, failures;
	char note[192];         /* why none runs, or what it left out ("" when all is well) */
};
typedef void mgmt_capture_status_fn(void *arg, struct mgmt_capture_status *out /* OUT */);
/** status asks FN (with ARG) for the live pipeline; without it, status has no "capture". */
void mgmt_ctl_set_capture(struct mgmt_ctl *ctl, mgmt_capture_status_fn *fn, void *arg);

#endif /* MGMT_CTL_H */
