/*
 * The control socket (mgmt.h): one JSON request per line in, one JSON reply per line out, the
 * caller identified by SO_PEERCRED and held to the roles the people map gives it. One action
 * table serves the socket and mgmt_ctl_handle() (FD.io VPP's CLI/API sharing).
 */
#include <errno.h>
#include <inttypes.h>
#include <cap-ng.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mgmt_int.h"
#include "vg_base.h"
#include "vg_log.h"

#define CTL_MAX_REQUESTS_PER_CONNECTION 64
#define CTL_IDLE_TIMEOUT_S 5
#define CTL_REPLY_MAX (1u << 20)
#define CTL_AUDIT_LIST_MAX 1000

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
	const struct mgmt_capture *capture; /* the live pipeline, for status; NULL outside vigild serve */
};

#define ALL_ROLES (MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR | MGMT_ROLE_AUDITOR)

typedef int ctl_action_fn(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen);

/* Arguments: mgmt_arg_string() and mgmt_arg_int() (mgmt_int.h), one-line reasons naming the argument. */

static json_t *deployment_json(const struct mgmt_deployment *d)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s?}", "id", (json_int_t)d->id, "name", d->name,
			 "use_case", mgmt_use_case_name(d->use_case), "state", mgmt_deployment_state_name(d->state),
			 "location", d->location, "start", (json_int_t)d->start_s, "end", (json_int_t)d->end_s,
			 "requested_by", d->requested_by, "authorised_by", d->authorised_by[0] ? d->authorised_by : NULL);
}

/* ---- actions -------------------------------------------------------------------------------- */

static int act_status(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result, char *err,
		      size_t errlen)
{
	sqlite3_stmt *st;
	json_int_t active = 0;

	if (sqlite3_prepare_v2(ctl->db->sql, "SELECT COUNT(*) FROM deployments WHERE state = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return vg_errf(err, errlen, -EIO, "database error");
	sqlite3_bind_int(st, 1, MGMT_DEPLOYMENT_ACTIVE);
	if (sqlite3_step(st) == SQLITE_ROW)
		active = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* What an auditor asks first: is the process undumpable, and which privileges does it hold. */
	static const char *const caps[] = { [CAPNG_NONE] = "none", [CAPNG_PARTIAL] = "partial", [CAPNG_FULL] = "full" };
	capng_get_caps_process();
	capng_results_t have = capng_have_capabilities(CAPNG_SELECT_CAPS);
	*result = json_pack("{s:s, s:i, s:I, s:s, s:b, s:s}", "version", "0.1.0", "schema",
			    mgmt_db_schema_version(ctl->db), "deployments_active", active, "you", who->name, "dumpable",
			    prctl(PR_GET_DUMPABLE) == 1, "capabilities",
			    have >= CAPNG_NONE && have <= CAPNG_FULL ? caps[have] : "unknown");
	if (*result && ctl->capture) {
		const struct mgmt_capture *c = ctl->capture;
		json_object_set_new(*result, "capture",
				    json_pack("{s:b, s:i, s:I, s:I, s:i, s:i, s:s}", "running", c->pid != 0, "pid", (int)c->pid,
					      "deployment", (json_int_t)c->deployment, "since", (json_int_t)c->started_s,
					      "starts", (int)c->starts, "failures", (int)c->failures, "note", c->why));
	}
	return 0;
}

static const char *const use_cases[] = { "crime-hotspot", "protective-security", "sought-persons" };

static int act_deployment_create(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
				 char *err, size_t errlen)
{
	struct mgmt_deployment_request req = { 0 };
	const char *use_case, *lists[64];
	json_t *wl = json_object_get(args, "watchlists"), *v;
	size_t i;
	int64_t id;
	int rc;

	if ((rc = mgmt_arg_string(args, "name", true, &req.name, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "use_case", true, &use_case, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "location", true, &req.location, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "justification", true, &req.justification, err, errlen)) < 0 ||
	    (rc = mgmt_arg_int(args, "start", true, &req.start_s, err, errlen)) < 0 ||
	    (rc = mgmt_arg_int(args, "end", true, &req.end_s, err, errlen)) < 0)
		return rc;
	req.use_case = (enum mgmt_use_case)-1;
	for (i = 0; i < VG_ARRAY_SIZE(use_cases); i++)
		if (strcmp(use_case, use_cases[i]) == 0)
			req.use_case = (enum mgmt_use_case)i;
	if ((int)req.use_case < 0)
		return vg_errf(err, errlen, -EINVAL, "use_case must be crime-hotspot, protective-security or sought-persons");
	if (!json_is_array(wl) || json_array_size(wl) == 0 || json_array_size(wl) > VG_ARRAY_SIZE(lists))
		return vg_errf(err, errlen, -EINVAL, "watchlists must be a list of 1 to 64 watchlist ids");
	json_array_foreach(wl, i, v) {
		if (!json_is_string(v))
			return vg_errf(err, errlen, -EINVAL, "watchlist ids must be strings");
		lists[i] = json_string_value(v);
	}
	req.watchlists = lists;
	req.n_watchlists = json_array_size(wl);
	rc = mgmt_deployment_create(ctl->db, who, &req, &id, err, errlen);
	if (rc < 0)
		return rc;
	*result = json_pack("{s:I}", "id", (json_int_t)id);
	return 0;
}

static int decide(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result, char *err,
		  size_t errlen, bool approve)
{
	const char *reasons;
	int64_t id;
	int rc;

	if ((rc = mgmt_arg_int(args, "id", true, &id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "reasons", true, &reasons, err, errlen)) < 0)
		return rc;
	rc = mgmt_deployment_authorise(ctl->db, who, id, approve, reasons, err, errlen);
	if (rc == 0)
		*result = json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", approve ? "authorised" : "refused");
	return rc;
}

static int act_deployment_authorise(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args,
				    json_t **result, char *err, size_t errlen)
{
	return decide(ctl, who, args, result, err, errlen, true);
}

static int act_deployment_refuse(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
				 char *err, size_t errlen)
{
	return decide(ctl, who, args, result, err, errlen, false);
}

static int act_deployment_start(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
				char *err, size_t errlen)
{
	int64_t id;
	int rc = mgmt_arg_int(args, "id", true, &id, err, errlen);

	if (rc == 0)
		rc = mgmt_deployment_start(ctl->db, who, id, (int64_t)time(NULL), err, errlen);
	if (rc == 0)
		*result = json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", "active");
	return rc;
}

static int act_deployment_stop(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			       char *err, size_t errlen)
{
	const char *reason;
	int64_t id;
	int rc;

	if ((rc = mgmt_arg_int(args, "id", true, &id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "reason", true, &reason, err, errlen)) < 0)
		return rc;
	rc = mgmt_deployment_stop(ctl->db, who, id, reason, ctl->purge, ctl->purge_arg, err, errlen);
	if (rc == 0)
		*result = json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", "ended");
	return rc;
}

static int act_deployment_show(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			       char *err, size_t errlen)
{
	struct mgmt_deployment d;
	int64_t id;
	int rc = mgmt_arg_int(args, "id", true, &id, err, errlen);

	if (rc < 0)
		return rc;
	rc = mgmt_deployment_get(ctl->db, id, &d);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "no deployment %" PRId64, id);
	*result = deployment_json(&d);
	/* The figures the public record publishes: faces scanned, alerts, and how they were judged. */
	struct mgmt_transparency t;
	if (mgmt_deployment_transparency(ctl->db, id, &t) == 0)
		json_object_set_new(*result, "transparency",
				    json_pack("{s:I, s:I, s:I, s:I, s:I}", "faces_scanned", (json_int_t)t.faces_scanned,
					      "alerts", (json_int_t)t.alerts, "confirmed", (json_int_t)t.confirmed,
					      "rejected_false", (json_int_t)t.rejected, "unreviewed",
					      (json_int_t)t.unreviewed));
	json_t *hours = mgmt_transparency_hours_json(ctl->db, id);
	if (hours)
		json_object_set_new(*result, "hours", hours);
	return 0;
}

static const char *const outcome_names[] = { "unreviewed", "confirmed", "rejected" };

static json_t *alert_json(const struct mgmt_alert *a)
{
	return json_pack("{s:I, s:I, s:s, s:f, s:I, s:s, s:s, s:s, s:f, s:f, s:[iiii], s:s?, s:s, s:s?, s:s?}", "id",
			 (json_int_t)a->id, "deployment", (json_int_t)a->deployment, "camera", a->camera, "time_s",
			 (double)a->pts / 90000.0, "track", (json_int_t)a->track, "subject", a->subject, "watchlist",
			 a->watchlist, "metric", a->metric, "value", a->value, "threshold", a->threshold, "box", a->box[0],
			 a->box[1], a->box[2], a->box[3], "evidence", a->evidence[0] ? a->evidence : NULL, "outcome",
			 outcome_names[a->outcome <= MGMT_ALERT_REJECTED ? a->outcome : 0], "reviewed_by",
			 a->reviewed_by[0] ? a->reviewed_by : NULL, "note", a->note[0] ? a->note : NULL);
}

static int act_alert_show(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen)
{
	struct mgmt_alert a;
	int64_t id;
	int rc = mgmt_arg_int(args, "id", true, &id, err, errlen);

	if (rc < 0)
		return rc;
	if (mgmt_alert_get(ctl->db, id, &a) < 0)
		return vg_errf(err, errlen, -ENOENT, "no alert %" PRId64, id);
	*result = alert_json(&a);
	return 0;
}

static int act_alert_list(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen)
{
	json_t *list = json_array(), *pending = json_object_get(args, "unreviewed");
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(ctl->db->sql,
			       json_is_true(pending) ? "SELECT id FROM alerts WHERE outcome = 0 ORDER BY id LIMIT 1000"
						     : "SELECT id FROM alerts ORDER BY id DESC LIMIT 1000",
			       -1, &st, NULL) != SQLITE_OK) {
		json_decref(list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mgmt_alert a;
		if (mgmt_alert_get(ctl->db, sqlite3_column_int64(st, 0), &a) == 0)
			json_array_append_new(list, alert_json(&a));
	}
	sqlite3_finalize(st);
	*result = json_pack("{s:o}", "alerts", list);
	return 0;
}

static int act_alert_review(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			    char *err, size_t errlen)
{
	const char *decision, *note;
	int64_t id;
	int rc;

	if ((rc = mgmt_arg_int(args, "id", true, &id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "decision", true, &decision, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "note", true, &note, err, errlen)) < 0)
		return rc;
	if (strcmp(decision, "confirm") != 0 && strcmp(decision, "reject") != 0)
		return vg_errf(err, errlen, -EINVAL, "decision must be confirm or reject");
	rc = mgmt_alert_review(ctl->db, who, id, strcmp(decision, "confirm") == 0, note, err, errlen);
	if (rc == 0 && ctl->outcome)
		ctl->outcome(ctl->outcome_arg, ctl->db); /* the evidence's retention follows the decision */
	if (rc == 0)
		*result = json_pack("{s:I, s:s}", "id", (json_int_t)id, "outcome",
				    strcmp(decision, "confirm") == 0 ? "confirmed" : "rejected");
	return rc;
}

static int act_deployment_list(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			       char *err, size_t errlen)
{
	sqlite3_stmt *st;
	json_t *list = json_array();

	if (sqlite3_prepare_v2(ctl->db->sql, "SELECT id FROM deployments ORDER BY id DESC LIMIT 1000", -1, &st, NULL) !=
	    SQLITE_OK) {
		json_decref(list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mgmt_deployment d;

		if (mgmt_deployment_get(ctl->db, sqlite3_column_int64(st, 0), &d) == 0)
			json_array_append_new(list, deployment_json(&d));
	}
	sqlite3_finalize(st);
	*result = json_pack("{s:o}", "deployments", list);
	return 0;
}

static int act_audit_verify(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			    char *err, size_t errlen)
{
	struct mgmt_audit_report r;
	int rc = mgmt_audit_verify(ctl->db, &r);

	if (rc < 0 && rc != -EBADMSG)
		return vg_errf(err, errlen, rc, "cannot read the audit log");
	*result = json_pack("{s:b, s:I, s:I, s:s}", "intact", rc == 0, "entries", (json_int_t)r.entries, "first_bad",
			    (json_int_t)r.first_bad_seq, "reason", r.reason);
	return 0;
}

static int act_audit_list(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen)
{
	json_t *since = json_object_get(args, "since"), *list = json_array();
	sqlite3_stmt *st;

	if (since && !json_is_integer(since)) {
		json_decref(list);
		return vg_errf(err, errlen, -EINVAL, "argument 'since' must be an integer");
	}
	if (sqlite3_prepare_v2(ctl->db->sql,
			       "SELECT seq, ts_ns, actor, uid, action, object, detail FROM audit WHERE seq > ?"
			       " ORDER BY seq LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK) {
		json_decref(list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	sqlite3_bind_int64(st, 1, since ? json_integer_value(since) : 0);
	sqlite3_bind_int(st, 2, CTL_AUDIT_LIST_MAX);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(list, json_pack("{s:I, s:I, s:s, s:I, s:s, s:s, s:s?}", "seq",
						      (json_int_t)sqlite3_column_int64(st, 0), "ts_ns",
						      (json_int_t)sqlite3_column_int64(st, 1), "actor",
						      (const char *)sqlite3_column_text(st, 2), "uid",
						      (json_int_t)sqlite3_column_int64(st, 3), "action",
						      (const char *)sqlite3_column_text(st, 4), "object",
						      (const char *)sqlite3_column_text(st, 5), "detail",
						      (const char *)sqlite3_column_text(st, 6)));
	sqlite3_finalize(st);
	*result = json_pack("{s:o}", "entries", list);
	return 0;
}

static const struct ctl_action {
	const char *verb;
	unsigned roles; /* any of these may call it */
	ctl_action_fn *fn;
	const char *help;
} actions[] = {
	{ "status", ALL_ROLES, act_status, "what vigild runs, and who you are to it" },
	{ "deployment.create", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, act_deployment_create,
	  "request a deployment: name, use_case, location, start, end, justification, watchlists" },
	{ "deployment.authorise", MGMT_ROLE_AUTHORISER, act_deployment_authorise, "authorise a deployment: id, reasons" },
	{ "deployment.refuse", MGMT_ROLE_AUTHORISER, act_deployment_refuse, "refuse a deployment: id, reasons" },
	{ "deployment.start", MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER, act_deployment_start, "start: id" },
	{ "deployment.stop", MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER, act_deployment_stop, "stop: id, reason" },
	{ "deployment.show", ALL_ROLES, act_deployment_show, "one deployment: id" },
	{ "deployment.list", ALL_ROLES, act_deployment_list, "every deployment, newest first" },
	{ "alert.list", MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER | MGMT_ROLE_AUDITOR, act_alert_list,
	  "alerts, newest first, or {unreviewed: true} for those awaiting a decision" },
	{ "alert.show", MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER | MGMT_ROLE_AUDITOR, act_alert_show, "one alert: id" },
	{ "alert.review", MGMT_ROLE_OPERATOR, act_alert_review, "a person's decision: id, decision (confirm|reject), note" },
	{ "audit.list", MGMT_ROLE_AUDITOR | MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER, act_audit_list,
	  "audit entries after seq 'since', 1000 at most" },
	{ "audit.verify", MGMT_ROLE_AUDITOR | MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER, act_audit_verify,
	  "check the whole hash chain" },
	{ "audit.export", MGMT_ROLE_AUDITOR | MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER, mgmt_act_audit_export,
	  "the chain with its hashes after seq 'since', 1000 at most; since 0 audits the export" },
	{ "camera.add", MGMT_ROLE_ADMIN, mgmt_act_camera_add, "add a camera: id, url, location, fps" },
	{ "camera.remove", MGMT_ROLE_ADMIN, mgmt_act_camera_remove, "remove a camera: id" },
	{ "camera.list", ALL_ROLES, mgmt_act_camera_list, "every camera, URLs without credentials" },
	{ "camera.probe", MGMT_ROLE_ADMIN, mgmt_act_camera_probe,
	  "connect to a camera and report codec, resolution, frame rate, loss: id, seconds" },
	{ "config.get", MGMT_ROLE_ADMIN | MGMT_ROLE_AUDITOR | MGMT_ROLE_AUTHORISER, mgmt_act_config_get,
	  "vigild's settings, or one: name" },
	{ "config.set", MGMT_ROLE_ADMIN, mgmt_act_config_set, "change a run-time setting, kept across restarts: name, value" },
	{ "retention.show", ALL_ROLES, mgmt_act_retention_show, "evidence retention per review outcome" },
	{ "retention.set", MGMT_ROLE_ADMIN, mgmt_act_retention_set,
	  "set evidence retention: confirmed_days, rejected_days, unreviewed_days" },
	{ "watchlist.add", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, mgmt_act_watchlist_add,
	  "register the watchlist file passed with the request (and its enrolment crops): name, threshold" },
	{ "watchlist.list", ALL_ROLES, mgmt_act_watchlist_list, "every watchlist record, newest first" },
	{ "watchlist.show", ALL_ROLES, mgmt_act_watchlist_show, "one watchlist and its subject ids (never descriptors): id" },
	{ "watchlist.remove", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, mgmt_act_watchlist_remove,
	  "delete a watchlist's files, keeping its record: id, reason" },
	{ "watchlist.purge", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, mgmt_act_watchlist_purge,
	  "purge one watchlist (id), or every one no authorised deployment names; reason" },
};

/* ---- dispatch ------------------------------------------------------------------------------- */

static char *reply_error(int rc, const char *msg)
{
	const char *name = strerrorname_np(rc < 0 ? -rc : rc);
	json_t *j = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "errno", name ? name : "EIO");
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

int mgmt_ctl_handle(struct mgmt_ctl *ctl, const struct mgmt_actor *who, const char *request, size_t len, char **reply)
{
	const struct ctl_action *act = NULL;
	char err[512] = "", object[96];
	json_t *req, *args, *result = NULL;
	json_error_t jerr;
	const char *verb;
	int rc;

	*reply = NULL;
	if (len > MGMT_CTL_REQUEST_MAX) {
		*reply = reply_error(-E2BIG, "request longer than 65536 bytes");
		return -E2BIG;
	}
	/* JSON_REJECT_DUPLICATES: {"id":1,"id":2} must not mean different things to different readers. */
	req = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		snprintf(err, sizeof(err), "malformed request: %s at byte %d", jerr.text, jerr.position);
		*reply = reply_error(-EINVAL, err);
		return -EINVAL;
	}
	verb = json_string_value(json_object_get(req, "verb"));
	args = json_object_get(req, "args");
	if (!json_is_object(req) || !verb || (args && !json_is_object(args))) {
		json_decref(req);
		*reply = reply_error(-EINVAL, "a request is {\"verb\": string, \"args\": object}");
		return -EINVAL;
	}
	for (size_t i = 0; i < VG_ARRAY_SIZE(actions); i++)
		if (strcmp(actions[i].verb, verb) == 0)
			act = &actions[i];
	if (!act) {
		snprintf(err, sizeof(err), "unknown verb '%.64s'", verb);
		json_decref(req);
		*reply = reply_error(-EOPNOTSUPP, err);
		return -EOPNOTSUPP;
	}
	if (!(who->roles & act->roles)) {
		/* Refusals are state worth keeping: who tried what. */
		snprintf(object, sizeof(object), "verb/%s", act->verb);
		mgmt_audit_append(ctl->db, who, "request.refused", object, NULL, NULL);
		snprintf(err, sizeof(err), "%s may not %s: that needs another role", who->name, act->verb);
		json_decref(req);
		*reply = reply_error(-EPERM, err);
		return -EPERM;
	}
	json_t *empty = args ? NULL : json_object();
	rc = act->fn(ctl, who, args ? args : empty, &result, err, sizeof(err));
	json_decref(empty);
	json_decref(req);
	if (rc < 0) {
		*reply = reply_error(rc, err[0] ? err : vg_strerror(rc));
		return rc;
	}
	json_t *j = json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_object());
	*reply = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return *reply ? 0 : -ENOMEM;
}

/* ---- the socket ----------------------------------------------------------------------------- */

void mgmt_ctl_set_people(struct mgmt_ctl *ctl, const struct mgmt_people *people)
{
	ctl->people = people;
}

void mgmt_ctl_set_conf(struct mgmt_ctl *ctl, const struct vg_conf_set *set, mgmt_conf_apply_fn *apply, void *arg)
{
	ctl->conf = set;
	ctl->conf_apply = apply;
	ctl->conf_arg = arg;
}

void mgmt_ctl_set_probe(struct mgmt_ctl *ctl, mgmt_probe_fn *probe)
{
	ctl->probe = probe;
}

struct mgmt_db *mgmt_ctl_db(const struct mgmt_ctl *ctl)
{
	return ctl->db;
}

mgmt_probe_fn *mgmt_ctl_probe(const struct mgmt_ctl *ctl)
{
	return ctl->probe;
}

void mgmt_ctl_conf(const struct mgmt_ctl *ctl, const struct vg_conf_set **set, mgmt_conf_apply_fn **apply, void **arg)
{
	*set = ctl->conf;
	*apply = ctl->conf_apply;
	*arg = ctl->conf_arg;
}

void mgmt_ctl_set_outcome(struct mgmt_ctl *ctl, mgmt_outcome_fn *fn, void *arg)
{
	ctl->outcome = fn;
	ctl->outcome_arg = arg;
}

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

void mgmt_ctl_set_capture(struct mgmt_ctl *ctl, const struct mgmt_capture *capture)
{
	ctl->capture = capture;
}

void mgmt_ctl_set_purge(struct mgmt_ctl *ctl, mgmt_purge_fn *purge, void *arg)
{
	ctl->purge = purge;
	ctl->purge_arg = arg;
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
				reply = reply_error(-E2BIG, "request longer than 65536 bytes");
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
