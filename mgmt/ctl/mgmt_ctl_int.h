/*
 * The control socket's private layout, and what its action files share (not for other parts).
 * Each action takes the request's ARGS (a JSON object), checks them with mgmt_arg_*(), calls the
 * state library, and puts its reply in *RESULT; a refusal returns -errno with a one-line reason
 * in ERR. Actions run on the management loop's thread (mgmt_ctl.h).
 */
#ifndef MGMT_CTL_INT_H
#define MGMT_CTL_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "mgmt_ctl.h"

struct mgmt_ctl {
	struct mgmt_db *db;
	const struct mgmt_people *people;
	int fd;
	char *path;
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
