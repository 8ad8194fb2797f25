/*
 * The control socket's private layout, and what its action files share (not for other parts).
 * Each action takes the request's ARGS (a JSON object), checks them with mgmt_arg_*(), calls the
 * state library, and puts its reply in *RESULT; a refusal returns -errno with a one-line reason
 * in ERR. Actions run on the management loop's thread (mgmt_ctl.h).
 */
#ifndef MGMT_CTL_INT_H
#define MGMT_CTL_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "mgmt_ctl.h"

/* The connection caps (mgmt_ctl.h documents them). */
#define MGMT_CTL_CONNS_PER_UID 8
#define MGMT_CTL_CONNS_MAX 128
/* Refusals audited: the first per uid per window, the rest as one count when the window ends. */
#define MGMT_CTL_REFUSAL_WINDOW_S 60
#define MGMT_CTL_REFUSAL_SLOTS 64

struct ctl_conn;

/* One uid's refusals in the current window (mgmt_ctl.c). */
struct ctl_refusals {
	uint32_t uid;
	bool used;
	char name[64];
	char verb[48];         /* the last one refused */
	uint64_t since_ns;     /* when the window began: its first refusal, audited then */
	unsigned more;         /* refused after the first, not yet audited */
};

/* camera.probe off the loop thread (mgmt_ctl_probe.c): one at a time. */
struct mgmt_ctl_probe {
	/* Set on the loop thread before the worker starts; the worker reads them. */
	mgmt_probe_fn *fn;
	char id[32], url[1024], user[MGMT_CREDENTIAL_MAX], password[MGMT_CREDENTIAL_MAX];
	unsigned seconds;
	char who_name[64];
	uint32_t who_uid;
	unsigned who_roles;
	/* The worker's until it writes the eventfd; the loop reads them after joining it. */
	int rc;
	struct mgmt_probe_result r;
	char why[256];
};

struct mgmt_ctl {
	struct mgmt_db *db;
	const struct mgmt_people *people;
	int fd;                         /* the listening socket; -1 without one */
	int ep;                         /* epoll over it, the connections and the probe's eventfd */
	bool bound;                     /* the path is ours to unlink */
	char *path;
	struct ctl_conn *conns[MGMT_CTL_CONNS_MAX];
	unsigned n_conns;
	struct ctl_conn *request_conn;  /* whose request the action runs (for a probe's reply) */
	uint64_t answered, refused_conns, timed_out;
	struct ctl_refusals refusals[MGMT_CTL_REFUSAL_SLOTS];
	/* The probe worker: running while probe_running; probe_conn waits for its reply (NULL: gone). */
	int probe_efd;
	bool probe_running;
	pthread_t probe_thread;
	struct ctl_conn *probe_conn;
	struct mgmt_ctl_probe probe_job;
	mgmt_purge_fn *purge;
	void *purge_arg;
	const struct vg_conf_set *conf; /* config.get/set: the live settings, lent by vigild */
	mgmt_conf_apply_fn *conf_apply;
	void *conf_arg;
	mgmt_probe_fn *probe;           /* camera.probe, lent by vigild serve */
	int fds[MGMT_CTL_FDS_MAX];      /* passed with the request being read (SCM_RIGHTS); not yet taken: >= 0 */
	unsigned n_fds;
	mgmt_outcome_fn *outcome;       /* review outcomes to the evidence store, lent by vigild */
	void *outcome_arg;
	int64_t max_window_s;           /* deployment.create's limit (vigild.max_window_hours) */
	char model_id[32];              /* the model vigild runs ("": unknown) */
	const struct match_calib *calib; /* its calibration, lent by vigild (NULL: none) */
	double max_expected_per_1000;   /* vigild.max_expected_false_alerts (0: no limit) */
	mgmt_capture_status_fn *capture_status; /* the live pipeline, for status; NULL outside vigild serve */
	void *capture_arg;
};

typedef int mgmt_ctl_action_fn(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			       char *err, size_t errlen);

struct mgmt_db *mgmt_ctl_db(const struct mgmt_ctl *ctl);
mgmt_probe_fn *mgmt_ctl_probe(const struct mgmt_ctl *ctl);
/* The live settings config.get/set serve; *SET is NULL when the caller lent none. */
void mgmt_ctl_conf(const struct mgmt_ctl *ctl, const struct vg_conf_set **set, mgmt_conf_apply_fn **apply,
		   void **arg);
/* The I-th descriptor passed with the current request (SCM_RIGHTS), now the caller's; -EBADF if none. */
int mgmt_ctl_take_fd(struct mgmt_ctl *ctl, unsigned i);

/* mgmt_ctl_socket.c: the reply to a request that went to the probe worker (REPLY taken; CONN may be gone). */
void mgmt_ctl_conn_reply(struct mgmt_ctl *ctl, void *conn, char *reply);
/* mgmt_ctl.c: audit the counts of refusal windows that ended by NOW_NS (UINT64_MAX: all of them). */
void mgmt_ctl_refusals_flush(struct mgmt_ctl *ctl, uint64_t now_ns);
/* The earlier of NEXT_NS and the end of the first refusal window with a count to audit. */
uint64_t mgmt_ctl_refusals_next(const struct mgmt_ctl *ctl, uint64_t next_ns);
/* A reply line {"ok":true,"result":RESULT} (RESULT taken; NULL: {}), malloc'd. */
char *mgmt_ctl_reply_ok(json_t *result);
/* mgmt_ctl_probe.c: the worker and its eventfd. */
int mgmt_ctl_probe_init(struct mgmt_ctl *ctl);
void mgmt_ctl_probe_fini(struct mgmt_ctl *ctl);
/* The eventfd said the worker finished: join it, audit, reply. */
void mgmt_ctl_probe_done(struct mgmt_ctl *ctl);
/* Hand JOB to the worker: -EINPROGRESS (the reply comes later), -EBUSY while another runs. */
int mgmt_ctl_probe_submit(struct mgmt_ctl *ctl, const struct mgmt_ctl_probe *job, char *err, size_t errlen);
/* mgmt_ctl_camera.c: the probe itself (any thread: touches JOB only), and its audit and result
 * (loop thread). */
void mgmt_ctl_probe_run(struct mgmt_ctl_probe *job);
int mgmt_ctl_probe_finish(struct mgmt_ctl *ctl, struct mgmt_ctl_probe *job, json_t **result, char *err,
			  size_t errlen);

/* A reply line {"ok":false,"error":MSG,"errno":NAME} (malloc'd), for -errno RC. */
char *mgmt_ctl_reply_error(int rc, const char *msg);

/* Argument helpers: each failure is a one-line reason naming the argument. */
int mgmt_arg_string(json_t *args, const char *key, bool required, const char **out, char *err, size_t errlen);
int mgmt_arg_int(json_t *args, const char *key, bool required, int64_t *out, char *err, size_t errlen);

/* mgmt_ctl_deployment.c */
mgmt_ctl_action_fn mgmt_act_status, mgmt_act_deployment_create, mgmt_act_deployment_authorise, mgmt_act_deployment_withdraw,
	mgmt_act_deployment_refuse, mgmt_act_deployment_start, mgmt_act_deployment_stop, mgmt_act_deployment_show,
	mgmt_act_deployment_list, mgmt_act_alert_list, mgmt_act_alert_show, mgmt_act_alert_review;
/* mgmt_ctl_audit.c */
mgmt_ctl_action_fn mgmt_act_audit_list, mgmt_act_audit_verify, mgmt_act_audit_export;
/* mgmt_ctl_camera.c */
mgmt_ctl_action_fn mgmt_act_camera_add, mgmt_act_camera_list, mgmt_act_camera_remove, mgmt_act_camera_probe;
/* mgmt_ctl_config.c */
mgmt_ctl_action_fn mgmt_act_config_get, mgmt_act_config_set, mgmt_act_retention_show, mgmt_act_retention_set;
/* mgmt_ctl_watchlist.c */
mgmt_ctl_action_fn mgmt_act_watchlist_add, mgmt_act_watchlist_list, mgmt_act_watchlist_show,
	mgmt_act_watchlist_remove, mgmt_act_watchlist_purge;

#endif /* MGMT_CTL_INT_H */
