/*
 * The deployment and alert actions of the control socket: status; deployment.create|authorise|
 * refuse|start|stop|show|list; alert.list|show|review. Arguments are checked here, every rule is
 * the state library's (mgmt.h): who may authorise, when matching may run, that a review is a
 * person's decision.
 */
#include <errno.h>
#include <inttypes.h>
#include <cap-ng.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"

#define LIST_MAX 1000        /* deployments or alerts in one reply, newest first */
#define HOURS_JSON_MAX 744   /* a month of hours in one reply; a longer window shows its first month */
#define HOURS_EVERY_MAX 168  /* a window up to a week lists every hour; a longer one only its busy hours */

/* A deployment as replies give it; FULL adds the texts (up to 4 KiB each) that only show carries,
 * so that a list of 1000 stays under the reply cap. */
static json_t *deployment_json(const struct mgmt_deployment *d, bool full)
{
	json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s?}", "id", (json_int_t)d->id, "name", d->name,
			      "use_case", mgmt_use_case_name(d->use_case), "state", mgmt_deployment_state_name(d->state),
			      "location", d->location, "start", (json_int_t)d->start_s, "end", (json_int_t)d->end_s,
			      "requested_by", d->requested_by, "authorised_by",
			      d->authorised_by[0] ? d->authorised_by : NULL);

	if (j && full) {
		/* What the authoriser weighs, and what they (or the requester, withdrawing) answered. */
		json_object_set_new(j, "justification", json_string(d->justification));
		if (d->decision_reasons[0])
			json_object_set_new(j, "decision_reasons", json_string(d->decision_reasons));
	}
	return j;
}

static void add_deployment(void *arg, const struct mgmt_deployment *d)
{
	json_array_append_new(arg, deployment_json(d, false));
}

int mgmt_act_status(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result, char *err,
		      size_t errlen)
{
	int64_t active = mgmt_deployment_count(ctl->db, MGMT_DEPLOYMENT_ACTIVE);

	if (active < 0)
		return vg_errf(err, errlen, -EIO, "database error");
	/* What an auditor asks first: is the process undumpable, and which privileges does it hold. */
	static const char *const caps[] = { [CAPNG_NONE] = "none", [CAPNG_PARTIAL] = "partial", [CAPNG_FULL] = "full" };
	capng_get_caps_process();
	capng_results_t have = capng_have_capabilities(CAPNG_SELECT_CAPS);
	*result = json_pack("{s:s, s:i, s:I, s:s, s:b, s:s}", "version", "0.1.0", "schema",
			    mgmt_db_schema_version(ctl->db), "deployments_active", (json_int_t)active, "you", who->name, "dumpable",
			    prctl(PR_GET_DUMPABLE) == 1, "capabilities",
			    have >= CAPNG_NONE && have <= CAPNG_FULL ? caps[have] : "unknown");
	if (*result && ctl->capture_status) {
		struct mgmt_capture_status c = { 0 };

		ctl->capture_status(ctl->capture_arg, &c);
		json_object_set_new(*result, "capture",
				    json_pack("{s:b, s:i, s:I, s:I, s:i, s:i, s:s}", "running", c.running, "pid", c.pid,
					      "deployment", (json_int_t)c.deployment, "since", (json_int_t)c.since_s,
					      "starts", (int)c.starts, "failures", (int)c.failures, "note", c.note));
	}
	return 0;
}

/* The expected false alerts as replies give them: the figures, what they rest on, and the text
 * people read. */
static json_t *expected_json(const struct mgmt_expected *e, double limit)
{
	char text[700];
	json_t *j;

	mgmt_expected_text(e, text, sizeof(text));
	j = json_pack("{s:b, s:s, s:s}", "stated", e->stated, "text", text, "statement", e->statement);
	if (j && e->stated) {
		json_object_set_new(j, "per_1000", json_real(e->per_1000));
		json_object_set_new(j, "low", json_real(e->low));
		json_object_set_new(j, "high", json_real(e->high));
		json_object_set_new(j, "bound", json_string(e->bound < 0 ? "at most" : e->bound > 0 ? "at least" : "estimate"));
		json_object_set_new(j, "model", json_string(e->model));
		json_object_set_new(j, "calibration", json_string(e->calibration_seal));
		if (e->faces_per_hour > 0) {
			json_object_set_new(j, "faces_per_hour", json_real(e->faces_per_hour));
			json_object_set_new(j, "per_hour", json_real(e->per_1000 * e->faces_per_hour / 1000));
		}
	}
	if (j && limit > 0)
		json_object_set_new(j, "policy_limit_per_1000", json_real(limit));
	return j;
}

static const char *const use_cases[] = { "crime-hotspot", "protective-security", "sought-persons" };

int mgmt_act_deployment_create(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
				 char *err, size_t errlen)
{
	struct mgmt_deployment_request req = { 0 };
	const char *use_case, *lists[MGMT_DEPLOYMENT_WATCHLISTS_MAX], *seals[MGMT_DEPLOYMENT_WATCHLISTS_MAX];
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
		return vg_errf(err, errlen, -EINVAL, "watchlists must be a list of 1 to 64 {id, seal}");
	/* Each by id and seal: the requester names the watchlist they reviewed, not whatever holds the
	 * id now (invariant 2). */
	json_array_foreach(wl, i, v) {
		lists[i] = json_string_value(json_object_get(v, "id"));
		seals[i] = json_string_value(json_object_get(v, "seal"));
		if (!lists[i] || !seals[i])
			return vg_errf(err, errlen, -EINVAL, "each watchlist is {\"id\": string, \"seal\": sha256 hex}");
	}
	req.watchlists = lists;
	req.seals = seals;
	req.n_watchlists = json_array_size(wl);
	req.now_s = (int64_t)time(NULL);
	req.max_window_s = ctl->max_window_s;
	req.model_id = ctl->model_id[0] ? ctl->model_id : NULL;
	req.calib = ctl->calib;
	req.max_expected_per_1000 = ctl->max_expected_per_1000;
	rc = mgmt_deployment_create(ctl->db, who, &req, &id, err, errlen);
	if (rc < 0)
		return rc;
	/* the requester sees at once what the authoriser will see */
	struct mgmt_expected e;
	*result = json_pack("{s:I}", "id", (json_int_t)id);
	if (*result && mgmt_deployment_expected(ctl->db, id, &e) == 0)
		json_object_set_new(*result, "expected_false_alerts", expected_json(&e, ctl->max_expected_per_1000));
	return 0;
}

static int decide(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result, char *err,
		  size_t errlen, bool approve)
{
	const char *reasons;
	int64_t id;
	int rc;

	json_t *seals = json_object_get(args, "seals"), *v;
	const char *given[64];
	size_t i, n = 0;

	if ((rc = mgmt_arg_int(args, "id", true, &id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "reasons", true, &reasons, err, errlen)) < 0)
		return rc;
	/* The seals the authoriser was shown, when the front end sends them: approved are exactly those. */
	if (seals) {
		if (!json_is_array(seals) || json_array_size(seals) > VG_ARRAY_SIZE(given))
			return vg_errf(err, errlen, -EINVAL, "seals must be a list of at most 64 sha256 hex strings");
		json_array_foreach(seals, i, v)
			if (!(given[n++] = json_string_value(v)))
				return vg_errf(err, errlen, -EINVAL, "seals must be strings");
		if (approve && (rc = mgmt_deployment_seals_check(ctl->db, id, given, n, err, errlen)) < 0)
			return rc;
	}
	rc = mgmt_deployment_authorise(ctl->db, who, id, approve, reasons, err, errlen);
	if (rc == 0)
		*result = json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", approve ? "authorised" : "refused");
	return rc;
}

int mgmt_act_deployment_authorise(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args,
				    json_t **result, char *err, size_t errlen)
{
	return decide(ctl, who, args, result, err, errlen, true);
}

int mgmt_act_deployment_refuse(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
				 char *err, size_t errlen)
{
	return decide(ctl, who, args, result, err, errlen, false);
}

int mgmt_act_deployment_withdraw(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
				 char *err, size_t errlen)
{
	const char *reason;
	int64_t id;
	int rc;

	if ((rc = mgmt_arg_int(args, "id", true, &id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "reason", true, &reason, err, errlen)) < 0)
		return rc;
	rc = mgmt_deployment_withdraw(ctl->db, who, id, reason, err, errlen);
	if (rc == 0)
		*result = json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", "withdrawn");
	return rc;
}

int mgmt_act_deployment_start(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
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

int mgmt_act_deployment_stop(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
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

/* The "hours" array of deployment.show: the public record hour by hour. */
static json_t *transparency_hours_json(struct mgmt_db *db, int64_t id)
{
	struct mgmt_transparency_hour *h = calloc(HOURS_JSON_MAX, sizeof(*h));
	json_t *list;
	int n;

	if (!h)
		return NULL;
	n = mgmt_deployment_transparency_hours(db, id, h, HOURS_JSON_MAX);
	list = n >= 0 ? json_array() : NULL;
	/* Cost: about 150 bytes an hour, so a permanent site's year-long window stays a short reply. */
	for (int i = 0; i < n; i++)
		if (n <= HOURS_EVERY_MAX || h[i].faces_scanned || h[i].alerts)
			json_array_append_new(list, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "hour", (json_int_t)h[i].hour_s,
						      "faces_scanned", (json_int_t)h[i].faces_scanned, "alerts",
						      (json_int_t)h[i].alerts, "confirmed", (json_int_t)h[i].confirmed,
						      "rejected_false", (json_int_t)h[i].rejected, "unreviewed",
						      (json_int_t)h[i].unreviewed));
	free(h);
	return list;
}

/* A watchlist as the authoriser weighs it: which, sealed how, how many people, at what threshold. */
static void add_bound_watchlist(void *arg, const struct mgmt_watchlist *w, const char *bound_seal)
{
	json_array_append_new(arg, json_pack("{s:s, s:s, s:s, s:I, s:f, s:s, s:b}", "id", w->id, "name", w->name, "seal",
					     bound_seal, "subjects", (json_int_t)w->subjects, "threshold", w->threshold,
					     "state", mgmt_watchlist_state_name(w->state),
					     "seal_matches", strcmp(bound_seal, w->sha256) == 0));
}

int mgmt_act_deployment_show(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
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
	*result = deployment_json(&d, true);
	/* The figures the public record publishes: faces scanned, alerts, and how they were judged. */
	struct mgmt_transparency t = { 0 };
	if (mgmt_deployment_transparency(ctl->db, id, &t) == 0)
		json_object_set_new(*result, "transparency",
				    json_pack("{s:I, s:I, s:I, s:I, s:I}", "faces_scanned", (json_int_t)t.faces_scanned,
					      "alerts", (json_int_t)t.alerts, "confirmed", (json_int_t)t.confirmed,
					      "rejected_false", (json_int_t)t.rejected, "unreviewed",
					      (json_int_t)t.unreviewed));
	/* what the request was expected to cost, beside what reviewers found */
	struct mgmt_expected e;
	if (mgmt_deployment_expected(ctl->db, id, &e) == 0) {
		json_t *ej = expected_json(&e, 0);
		if (ej && t.faces_scanned > 0)
			json_object_set_new(ej, "measured_false_per_1000",
					    json_real(1000.0 * (double)t.rejected / (double)t.faces_scanned));
		json_object_set_new(*result, "expected_false_alerts", ej);
	}
	json_t *wls = json_array();
	mgmt_deployment_watchlists(ctl->db, id, add_bound_watchlist, wls);
	json_object_set_new(*result, "watchlists", wls);
	json_t *hours = transparency_hours_json(ctl->db, id);
	if (hours)
		json_object_set_new(*result, "hours", hours);
	return 0;
}

static const char *const outcome_names[] = { "unreviewed", "confirmed", "rejected" };

static json_t *alert_json(const struct mgmt_alert *a)
{
	return json_pack("{s:I, s:I, s:s, s:f, s:I, s:s, s:s, s:s, s:s, s:f, s:f, s:[iiii], s:s?, s:s, s:s?, s:s?}",
			 "id", (json_int_t)a->id, "deployment", (json_int_t)a->deployment, "camera", a->camera, "time_s",
			 (double)a->pts / 90000.0, "track", (json_int_t)a->track, "subject", a->subject, "watchlist",
			 a->watchlist, "watchlist_seal", a->watchlist_seal, "metric", a->metric, "value", a->value, "threshold", a->threshold, "box", a->box[0],
			 a->box[1], a->box[2], a->box[3], "evidence", a->evidence[0] ? a->evidence : NULL, "outcome",
			 outcome_names[a->outcome <= MGMT_ALERT_REJECTED ? a->outcome : 0], "reviewed_by",
			 a->reviewed_by[0] ? a->reviewed_by : NULL, "note", a->note[0] ? a->note : NULL);
}

static void add_alert(void *arg, const struct mgmt_alert *a)
{
	json_array_append_new(arg, alert_json(a));
}

int mgmt_act_alert_show(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
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

int mgmt_act_alert_list(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen)
{
	json_t *list = json_array(), *pending = json_object_get(args, "unreviewed");

	if (mgmt_alert_list(ctl->db, json_is_true(pending), LIST_MAX, add_alert, list) < 0) {
		json_decref(list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	*result = json_pack("{s:o}", "alerts", list);
	return 0;
}

int mgmt_act_alert_review(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
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

int mgmt_act_deployment_list(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			       char *err, size_t errlen)
{
	json_t *list = json_array();

	if (mgmt_deployment_list(ctl->db, LIST_MAX, add_deployment, list) < 0) {
		json_decref(list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	*result = json_pack("{s:o}", "deployments", list);
	return 0;
}
