/* mgmt's private layout and helpers shared by its files (not for other components). */
#ifndef MGMT_INT_H
#define MGMT_INT_H

#include <sqlite3.h>
#include <sys/types.h>

#include "mgmt.h"

struct mgmt_db {
	sqlite3 *sql;
	char *anchor_path; /* the audit head anchor: "<seq> <hex hash>\n" */
};

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK; -EIO (with the SQLite reason logged) on failure. */
int mgmt_tx_begin(struct mgmt_db *db);
int mgmt_tx_commit(struct mgmt_db *db);
void mgmt_tx_rollback(struct mgmt_db *db);

/* Append an audit entry inside the caller's transaction. */
int mgmt_audit_append_tx(struct mgmt_db *db, const struct mgmt_actor *who, const char *action, const char *object,
			 const char *detail, int64_t *seq);

/* After a commit that appended audit entries: move the head anchor to the last entry. */
int mgmt_audit_anchor_update(struct mgmt_db *db);

/*
 * Overwrite PATH's bytes with zeros, sync, then unlink it: what deleting a watchlist or an
 * operator's copy of one means (mgmt_watchlist.c). 0 (also when PATH is already gone) or -errno.
 */
int mgmt_file_scrub(const char *path);

/* ---- control-socket actions kept outside mgmt_ctl.c (its action table names them) ---------- */

#include <jansson.h>

typedef int mgmt_ctl_action_fn(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			       char *err, size_t errlen);

struct mgmt_db *mgmt_ctl_db(const struct mgmt_ctl *ctl);
mgmt_probe_fn *mgmt_ctl_probe(const struct mgmt_ctl *ctl);
/* The live settings config.get/set serve; *SET is NULL when the caller lent none. */
void mgmt_ctl_conf(const struct mgmt_ctl *ctl, const struct vg_conf_set **set, mgmt_conf_apply_fn **apply,
		   void **arg);

/* Argument helpers: each failure is a one-line reason naming the argument (mgmt_camera.c). */
int mgmt_arg_string(json_t *args, const char *key, bool required, const char **out, char *err, size_t errlen);
int mgmt_arg_int(json_t *args, const char *key, bool required, int64_t *out, char *err, size_t errlen);

mgmt_ctl_action_fn mgmt_act_camera_add, mgmt_act_camera_list, mgmt_act_camera_remove, mgmt_act_camera_probe;
mgmt_ctl_action_fn mgmt_act_config_get, mgmt_act_config_set, mgmt_act_retention_show, mgmt_act_retention_set;
mgmt_ctl_action_fn mgmt_act_audit_export;

/* The I-th descriptor passed with the current request (SCM_RIGHTS), now the caller's; -EBADF if none. */
int mgmt_ctl_take_fd(struct mgmt_ctl *ctl, unsigned i);
mgmt_ctl_action_fn mgmt_act_watchlist_add, mgmt_act_watchlist_list, mgmt_act_watchlist_show;
mgmt_ctl_action_fn mgmt_act_watchlist_remove, mgmt_act_watchlist_purge;
/* May a new deployment name watchlist ID? Unregistered: yes. Registered: only live, and in no
 * other requested, authorised or active deployment. 0, or -ESTALE/-EBUSY with ERR. */
int mgmt_watchlist_check_for_deployment(struct mgmt_db *db, const char *id, char *err, size_t errlen);
/* The "hours" array of deployment.show: the public record hour by hour (mgmt_record.c). */
json_t *mgmt_transparency_hours_json(struct mgmt_db *db, int64_t id);
/* Add N faces scanned now to deployment ID's current hour (mgmt_deployment_add_scanned's record). */
int mgmt_scanned_hour_add(struct mgmt_db *db, int64_t id, uint64_t n);

/*
 * vigild serve's live pipeline (mgmt_capture.c): a `vigild run` child over the cameras while a
 * deployment is active. The daemon loop calls mgmt_capture_tick() once a second.
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
/* status shows CAPTURE (it must outlive the control socket). */
void mgmt_ctl_set_capture(struct mgmt_ctl *ctl, const struct mgmt_capture *capture);

#endif /* MGMT_INT_H */
