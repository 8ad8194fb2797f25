/*
 * Deployments (mgmt.h): requested, authorised by a different person holding the authoriser role,
 * started inside their window, ended (and their watchlists purged) by hand or when the window
 * closes. Every transition and its audit entry commit in one transaction.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mgmt_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_log.h"

static const char *const use_case_names[] = {
	[MGMT_USE_CRIME_HOTSPOT] = "crime-hotspot",
	[MGMT_USE_PROTECTIVE_SECURITY] = "protective-security",
	[MGMT_USE_SOUGHT_PERSONS] = "sought-persons",
};

static const char *const state_names[] = {
	[MGMT_DEPLOYMENT_REQUESTED] = "requested", [MGMT_DEPLOYMENT_AUTHORISED] = "authorised",
	[MGMT_DEPLOYMENT_ACTIVE] = "active",       [MGMT_DEPLOYMENT_ENDED] = "ended",
	[MGMT_DEPLOYMENT_REFUSED] = "refused",     [MGMT_DEPLOYMENT_WITHDRAWN] = "withdrawn",
};

const char *mgmt_use_case_name(enum mgmt_use_case u)
{
	return (unsigned)u < VG_ARRAY_SIZE(use_case_names) ? use_case_names[u] : "?";
}

const char *mgmt_deployment_state_name(enum mgmt_deployment_state s)
{
	return (unsigned)s < VG_ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

/* A JSON string body (no quotes) of S into BUF: for audit details built from user text. */
static void json_escape(char *buf, size_t len, const char *s)
{
	size_t w = 0;

	for (; s && *s && w + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			w += (size_t)snprintf(buf + w, len - w, "\\%c", c);
		else if (c < 0x20)
			w += (size_t)snprintf(buf + w, len - w, "\\u%04x", c);
		else
			buf[w++] = (char)c;
	}
	buf[w] = '\0';
}

static bool text_ok(const char *s, size_t max)
{
	return s && *s && strlen(s) < max;
}

/* Length of the UTF-8 sequence at S (1..4), or 0 if it is not one (overlong, surrogate, > U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

int mgmt_text_check(const char *field, const char *s, size_t max, bool multiline, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s || !*s)
		return vg_errf(err, errlen, -EINVAL, "%s is missing", field);
	if (strlen(s) > max)
		return vg_errf(err, errlen, -EINVAL, "%s is longer than %zu bytes", field, max);
	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0)
			return vg_errf(err, errlen, -EINVAL, "%s is not UTF-8 text", field);
		/* C0 and DEL; in UTF-8 the C1 controls are U+0080..U+009F (0xc2 0x80..0x9f). */
		if ((n == 1 && (*p < 0x20 || *p == 0x7f) && !(multiline && (*p == '\n' || *p == '\t'))) ||
		    (n == 2 && p[0] == 0xc2 && p[1] < 0xa0))
			return vg_errf(err, errlen, -EINVAL, "%s holds a control character (byte %zu)", field,
				       (size_t)(p - (const unsigned char *)s) + 1);
		p += n;
	}
	return 0;
}

int mgmt_deployment_times_check(int64_t start_s, int64_t end_s, int64_t now_s, int64_t max_window_s, char *err,
				size_t errlen)
{
	if (max_window_s <= 0)
		max_window_s = MGMT_DEPLOYMENT_WINDOW_DEFAULT_S;
	if (max_window_s > MGMT_DEPLOYMENT_WINDOW_MAX_S)
		max_window_s = MGMT_DEPLOYMENT_WINDOW_MAX_S;
	/* Each bound is checked before any subtraction, so no time near INT64_MIN/MAX can overflow. */
	if (start_s < now_s - MGMT_DEPLOYMENT_PAST_MAX_S)
		return vg_errf(err, errlen, -ERANGE, "a deployment cannot start more than %d hours before it is requested",
			       MGMT_DEPLOYMENT_PAST_MAX_S / 3600);
	if (end_s > now_s + MGMT_DEPLOYMENT_FUTURE_MAX_S)
		return vg_errf(err, errlen, -ERANGE, "a deployment must end within %d days of its request",
			       MGMT_DEPLOYMENT_FUTURE_MAX_S / 86400);
	if (start_s >= end_s)
		return vg_errf(err, errlen, -EINVAL, "a deployment must end after it starts");
	if (end_s - start_s > max_window_s)
		return vg_errf(err, errlen, -ERANGE,
			       "a deployment's window is at most %" PRId64 " hours (vigild.max_window_hours); "
			       "a longer one is renewed by a new authorisation",
			       max_window_s / 3600);
	return 0;
}

/*
 * May REQ name its watchlists (mgmt_watchlist_check_for_deployment), each enrolled with the model
 * vigild runs (the id is in the sealed file)? Their sizes into SUBJECTS and thresholds into
 * THRESHOLDS (REQ->n_watchlists, at most MGMT_DEPLOYMENT_WATCHLISTS_MAX). 0 or -errno with ERR.
 */
static int request_watchlists(struct mgmt_db *db, const struct mgmt_deployment_request *req, uint64_t *subjects,
			      double *thresholds, char *err, size_t errlen)
{
	if (req->n_watchlists > MGMT_DEPLOYMENT_WATCHLISTS_MAX)
		return vg_errf(err, errlen, -EINVAL, "a deployment names at most %d watchlists",
			       MGMT_DEPLOYMENT_WATCHLISTS_MAX);
	for (size_t i = 0; i < req->n_watchlists; i++) {
		struct mgmt_watchlist w;
		int rc = mgmt_watchlist_check_for_deployment(db, req->watchlists[i], req->seals[i], &w, err, errlen);

		if (rc < 0)
			return rc;
		if (req->model_id && w.model[0] && strcmp(w.model, req->model_id) != 0)
			return vg_errf(err, errlen, -EMEDIUMTYPE,
				       "watchlist %s was enrolled with model %s, but vigild runs %s: enrol it again with this model",
				       w.id, w.model, req->model_id);
		subjects[i] = w.subjects;
		thresholds[i] = w.threshold;
	}
	return 0;
}

/*
 * What REQ, naming watchlists of SUBJECTS people at THRESHOLDS, should be expected to cost in
 * false alerts (struct mgmt_expected) at NOW_S; refused (-EDOM) when the policy's limit could be
 * exceeded: the interval's upper end is over it, or nothing can be stated at all.
 */
static int request_expected(struct mgmt_db *db, const struct mgmt_deployment_request *req, const uint64_t *subjects,
			    const double *thresholds, int64_t now_s, struct mgmt_expected *out, char *err, size_t errlen)
{
	mgmt_expected_compute(req->calib, subjects, thresholds, req->n_watchlists, mgmt_measured_faces_per_hour(db, now_s),
			      out);
	if (req->max_expected_per_1000 > 0) {
		if (!out->stated)
			return vg_errf(err, errlen, -EDOM,
				       "the policy limits expected false alerts to %.3g per 1,000 faces, and the model has no "
				       "calibration to state them", req->max_expected_per_1000);
		double worst = out->bound == 1 ? INFINITY : out->high;
		if (worst > req->max_expected_per_1000)
			return vg_errf(err, errlen, -EDOM,
				       "expected false alerts up to %.3g per 1,000 faces%s, over the policy's limit of %.3g "
				       "(vigild.max_expected_false_alerts): raise the thresholds or shrink the watchlists",
				       out->bound == 1 ? out->low : out->high, out->bound == 1 ? " or more" : "",
				       req->max_expected_per_1000);
	}
	return 0;
}

int mgmt_deployment_create(struct mgmt_db *db, const struct mgmt_actor *who, const struct mgmt_deployment_request *req,
			   int64_t *id, char *err, size_t errlen)
{
	char detail[2048], e_name[256], e_loc[512], object[32], e_expected[400];
	uint64_t subjects[MGMT_DEPLOYMENT_WATCHLISTS_MAX];
	double thresholds[MGMT_DEPLOYMENT_WATCHLISTS_MAX];
	int64_t now_s = req->now_s ? req->now_s : (int64_t)(vg_clock_realtime_ns() / VG_NS_PER_SEC);
	sqlite3_stmt *st;
	int64_t new_id;
	int rc;

	if (!who || !(who->roles & (MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR)))
		return vg_errf(err, errlen, -EPERM, "requesting a deployment needs the admin, authoriser or operator role");
	if ((rc = mgmt_text_check("the name", req->name, 127, false, err, errlen)) < 0 ||
	    (rc = mgmt_text_check("the location", req->location, 255, false, err, errlen)) < 0 ||
	    (rc = mgmt_text_check("the justification", req->justification, 4095, true, err, errlen)) < 0)
		return rc;
	if ((unsigned)req->use_case >= VG_ARRAY_SIZE(use_case_names))
		return vg_errf(err, errlen, -EINVAL, "unknown use case %d", (int)req->use_case);
	if ((rc = mgmt_deployment_times_check(req->start_s, req->end_s, now_s, req->max_window_s, err, errlen)) < 0)
		return rc;
	if (req->n_watchlists == 0 || !req->watchlists)
		return vg_errf(err, errlen, -EINVAL, "a deployment needs at least one watchlist");
	for (size_t i = 0; i < req->n_watchlists; i++)
		if (!text_ok(req->watchlists[i], 65))
			return vg_errf(err, errlen, -EINVAL, "watchlist ids are 1 to 64 bytes");
	if (!req->seals)
		return vg_errf(err, errlen, -EINVAL, "a deployment names each watchlist by id and seal");
	if ((rc = request_watchlists(db, req, subjects, thresholds, err, errlen)) < 0)
		return rc;
	struct mgmt_expected expected;
	if ((rc = request_expected(db, req, subjects, thresholds, now_s, &expected, err, errlen)) < 0) {
		if (rc == -EDOM) {
			/* the policy said no: who asked for what, on the record */
			mgmt_expected_json(&expected, e_expected, sizeof(e_expected));
			snprintf(detail, sizeof(detail), "{\"why\":\"over the expected false alerts limit\",\"limit\":%.6g,"
				 "\"expected_false_alerts\":%s}", req->max_expected_per_1000, e_expected);
			mgmt_audit_append(db, who, "deployment.create.refused", "deployment/new", detail, NULL);
		}
		return rc;
	}

	rc = mgmt_tx_begin(db);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database busy or failing");
	if (sqlite3_prepare_v2(db->sql,
			       "INSERT INTO deployments (name, use_case, location, start_s, end_s, justification,"
			       " requested_by, requested_uid, state, created_ns)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, strftime('%s','now') * 1000000000)",
			       -1, &st, NULL) != SQLITE_OK)
		goto out_rollback;
	sqlite3_bind_text(st, 1, req->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)req->use_case);
	sqlite3_bind_text(st, 3, req->location, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, req->start_s);
	sqlite3_bind_int64(st, 5, req->end_s);
	sqlite3_bind_text(st, 6, req->justification, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, who->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, who->uid);
	sqlite3_bind_int(st, 9, MGMT_DEPLOYMENT_REQUESTED);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto out_rollback;
	new_id = sqlite3_last_insert_rowid(db->sql);
	for (size_t i = 0; i < req->n_watchlists; i++) {
		if (sqlite3_prepare_v2(db->sql,
				       "INSERT OR IGNORE INTO deployment_watchlists (deployment_id, watchlist_id, seal)"
				       " VALUES (?, ?, ?)",
				       -1, &st, NULL) != SQLITE_OK)
			goto out_rollback;
		sqlite3_bind_int64(st, 1, new_id);
		sqlite3_bind_text(st, 2, req->watchlists[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, req->seals[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			goto out_rollback;
	}
	if (mgmt_expected_store(db, new_id, &expected) < 0)
		goto out_rollback;
	json_escape(e_name, sizeof(e_name), req->name);
	json_escape(e_loc, sizeof(e_loc), req->location);
	mgmt_expected_json(&expected, e_expected, sizeof(e_expected));
	snprintf(detail, sizeof(detail),
		 "{\"name\":\"%s\",\"use_case\":\"%s\",\"location\":\"%s\",\"start\":%" PRId64 ",\"end\":%" PRId64
		 ",\"watchlists\":%zu,\"expected_false_alerts\":%s}",
		 e_name, use_case_names[req->use_case], e_loc, req->start_s, req->end_s, req->n_watchlists, e_expected);
	snprintf(object, sizeof(object), "deployment/%" PRId64, new_id);
	if (mgmt_audit_append_tx(db, who, "deployment.create", object, detail, NULL) < 0)
		goto out_rollback;
	rc = mgmt_tx_commit(db);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database commit failed");
	*id = new_id;
	return mgmt_audit_anchor_update(db);

out_rollback:
	VG_LOG(MGMT, ERR, "deployment create: %s", sqlite3_errmsg(db->sql));
	mgmt_tx_rollback(db);
	return vg_errf(err, errlen, -EIO, "database error: %s", sqlite3_errmsg(db->sql));
}

int mgmt_deployment_get(struct mgmt_db *db, int64_t id, struct mgmt_deployment *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT name, use_case, state, location, start_s, end_s, requested_by,"
			       " COALESCE(authorised_by, ''), justification, COALESCE(authorise_reasons, '')"
			       " FROM deployments WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		out->id = id;
		snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(st, 0));
		out->use_case = (enum mgmt_use_case)sqlite3_column_int(st, 1);
		out->state = (enum mgmt_deployment_state)sqlite3_column_int(st, 2);
		snprintf(out->location, sizeof(out->location), "%s", (const char *)sqlite3_column_text(st, 3));
		out->start_s = sqlite3_column_int64(st, 4);
		out->end_s = sqlite3_column_int64(st, 5);
		snprintf(out->requested_by, sizeof(out->requested_by), "%s", (const char *)sqlite3_column_text(st, 6));
		snprintf(out->authorised_by, sizeof(out->authorised_by), "%s", (const char *)sqlite3_column_text(st, 7));
		snprintf(out->justification, sizeof(out->justification), "%s", (const char *)sqlite3_column_text(st, 8));
		snprintf(out->decision_reasons, sizeof(out->decision_reasons), "%s",
			 (const char *)sqlite3_column_text(st, 9));
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Move deployment ID from state FROM to TO (checked in SQL, so a race cannot skip a state). */
static int transition(struct mgmt_db *db, int64_t id, enum mgmt_deployment_state from, enum mgmt_deployment_state to,
		      const struct mgmt_actor *authoriser, const char *reasons)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql,
			       authoriser ? "UPDATE deployments SET state = ?, authorised_by = ?, authorised_uid = ?,"
					    " authorise_reasons = ? WHERE id = ? AND state = ?"
					  : "UPDATE deployments SET state = ? WHERE id = ? AND state = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int(st, 1, (int)to);
	if (authoriser) {
		sqlite3_bind_text(st, 2, authoriser->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, authoriser->uid);
		sqlite3_bind_text(st, 4, reasons, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, id);
		sqlite3_bind_int(st, 6, (int)from);
	} else {
		sqlite3_bind_int64(st, 2, id);
		sqlite3_bind_int(st, 3, (int)from);
	}
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (rc == 0 && sqlite3_changes(db->sql) != 1)
		rc = -EALREADY;
	return rc;
}

static int requester_uid(struct mgmt_db *db, int64_t id, int64_t *uid, char *name, size_t name_len)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql, "SELECT requested_uid, requested_by FROM deployments WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*uid = sqlite3_column_int64(st, 0);
		snprintf(name, name_len, "%s", (const char *)sqlite3_column_text(st, 1));
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

/* The bound watchlists as JSON text, {"id":..,"seal":..} each (ids and seals are [0-9a-f] text). */
struct seal_text {
	char buf[64 * 100];
	size_t used;
};

static void add_seal_text(void *arg, const struct mgmt_watchlist *w, const char *bound_seal)
{
	struct seal_text *t = arg;
	int n;

	if (t->used + 100 >= sizeof(t->buf))
		return;
	n = snprintf(t->buf + t->used, sizeof(t->buf) - t->used, "%s{\"id\":\"%.15s\",\"seal\":\"%.64s\"}",
		     t->used ? "," : "", w->id, bound_seal);
	if (n > 0)
		t->used += (size_t)n;
}

/* Begin a transaction on deployment ID, with its requester's uid and name: 0, or -errno with ERR
 * and no transaction left open. */
static int begin_with_requester(struct mgmt_db *db, int64_t id, int64_t *req_uid, char *requester, size_t len,
				char *err, size_t errlen)
{
	int rc = mgmt_tx_begin(db);

	if (rc < 0)
		return vg_errf(err, errlen, rc, "database busy or failing");
	rc = requester_uid(db, id, req_uid, requester, len);
	if (rc < 0) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, rc, "no deployment %" PRId64, id);
	}
	return 0;
}

int mgmt_deployment_authorise(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, bool approve,
			      const char *reasons, char *err, size_t errlen)
{
	char requester[128], object[32], detail[4600 + sizeof(((struct seal_text *)0)->buf)], e_reasons[4096];
	int64_t req_uid;
	int rc;

	if (!who || !(who->roles & MGMT_ROLE_AUTHORISER)) {
		/* A refused request is itself a change worth a record: who tried, and what. */
		snprintf(object, sizeof(object), "deployment/%" PRId64, id);
		if (who && who->name)
			mgmt_audit_append(db, who, "deployment.authorise.refused", object, "{\"why\":\"not an authoriser\"}",
					  NULL);
		return vg_errf(err, errlen, -EPERM, "authorising needs the authoriser role");
	}
	if ((rc = mgmt_text_check("the reasons", reasons, 4095, true, err, errlen)) < 0)
		return rc;
	if ((rc = begin_with_requester(db, id, &req_uid, requester, sizeof(requester), err, errlen)) < 0)
		return rc;
	snprintf(object, sizeof(object), "deployment/%" PRId64, id);
	if (req_uid == who->uid || strcmp(requester, who->name) == 0) {
		mgmt_tx_rollback(db);
		mgmt_audit_append(db, who, "deployment.authorise.refused", object,
				  "{\"why\":\"the requester cannot authorise their own deployment\"}", NULL);
		return vg_errf(err, errlen, -EPERM, "%s requested deployment %" PRId64 " and cannot also authorise it",
			       requester, id);
	}
	rc = transition(db, id, MGMT_DEPLOYMENT_REQUESTED, approve ? MGMT_DEPLOYMENT_AUTHORISED : MGMT_DEPLOYMENT_REFUSED,
			who, reasons);
	if (rc < 0) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, rc, rc == -EALREADY ? "deployment %" PRId64 " is not awaiting authorisation"
								: "database error on deployment %" PRId64, id);
	}
	json_escape(e_reasons, sizeof(e_reasons), reasons);
	/* What was approved, in the record: the watchlists by the seals the request bound. */
	struct seal_text seals = { .buf = { 0 } };
	mgmt_deployment_watchlists(db, id, add_seal_text, &seals);
	/* and the false alerts it was expected to raise, as the authoriser was shown them */
	struct mgmt_expected expected;
	char e_expected[400] = "{\"stated\":false}";
	if (mgmt_deployment_expected(db, id, &expected) == 0)
		mgmt_expected_json(&expected, e_expected, sizeof(e_expected));
	snprintf(detail, sizeof(detail), "{\"reasons\":\"%s\",\"watchlists\":[%s],\"expected_false_alerts\":%s}", e_reasons,
		 seals.buf, e_expected);
	rc = mgmt_audit_append_tx(db, who, approve ? "deployment.authorise" : "deployment.refuse", object, detail, NULL);
	if (rc < 0 || (rc = mgmt_tx_commit(db)) < 0) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, rc, "database error");
	}
	return mgmt_audit_anchor_update(db);
}

int mgmt_deployment_withdraw(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, const char *reason,
			     char *err, size_t errlen)
{
	char requester[128], object[32], detail[4200], e_reason[4096];
	int64_t req_uid;
	int rc;

	if (!who)
		return vg_errf(err, errlen, -EPERM, "no caller");
	if ((rc = mgmt_text_check("the reason", reason, 4095, true, err, errlen)) < 0)
		return rc;
	if ((rc = begin_with_requester(db, id, &req_uid, requester, sizeof(requester), err, errlen)) < 0)
		return rc;
	if (req_uid != who->uid || strcmp(requester, who->name) != 0) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, -EPERM, "only %s, who requested deployment %" PRId64 ", may withdraw it",
			       requester, id);
	}
	/* Before the start only: requested, or authorised and not yet started. */
	rc = transition(db, id, MGMT_DEPLOYMENT_REQUESTED, MGMT_DEPLOYMENT_WITHDRAWN, NULL, NULL);
	if (rc == -EALREADY)
		rc = transition(db, id, MGMT_DEPLOYMENT_AUTHORISED, MGMT_DEPLOYMENT_WITHDRAWN, NULL, NULL);
	if (rc < 0) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, rc, rc == -EALREADY ? "deployment %" PRId64 " has started or been decided: "
								  "it can no longer be withdrawn"
								: "database error on deployment %" PRId64, id);
	}
	snprintf(object, sizeof(object), "deployment/%" PRId64, id);
	json_escape(e_reason, sizeof(e_reason), reason);
	snprintf(detail, sizeof(detail), "{\"reason\":\"%s\"}", e_reason);
	rc = mgmt_audit_append_tx(db, who, "deployment.withdraw", object, detail, NULL);
	if (rc < 0 || (rc = mgmt_tx_commit(db)) < 0) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, rc, "database error");
	}
	return mgmt_audit_anchor_update(db);
}

int mgmt_deployment_start(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, int64_t now_s, char *err,
			  size_t errlen)
{
	struct mgmt_deployment d;
	char object[32];
	int rc;

	if (!who || !(who->roles & (MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER)))
		return vg_errf(err, errlen, -EPERM, "starting a deployment needs the operator or authoriser role");
	rc = mgmt_deployment_get(db, id, &d);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "no deployment %" PRId64, id);
	if (d.state != MGMT_DEPLOYMENT_AUTHORISED)
		return vg_errf(err, errlen, -EPERM, "deployment %" PRId64 " is %s, not authorised", id,
			       state_names[d.state]);
	if (now_s < d.start_s || now_s >= d.end_s)
		return vg_errf(err, errlen, -ETIME, "deployment %" PRId64 " is authorised for %" PRId64 "..%" PRId64
			       ", not now (%" PRId64 ")", id, d.start_s, d.end_s, now_s);
	rc = mgmt_tx_begin(db);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database busy or failing");
	snprintf(object, sizeof(object), "deployment/%" PRId64, id);
	rc = transition(db, id, MGMT_DEPLOYMENT_AUTHORISED, MGMT_DEPLOYMENT_ACTIVE, NULL, NULL);
	if (rc == 0)
		rc = mgmt_audit_append_tx(db, who, "deployment.start", object, NULL, NULL);
	if (rc < 0 || (rc = mgmt_tx_commit(db)) < 0) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, rc, "deployment %" PRId64 " did not start", id);
	}
	return mgmt_audit_anchor_update(db);
}

/* Purge every watchlist of deployment ID through PURGE; stops at the first failure. */
/*
 * Run PURGE for each of deployment ID's watchlists (at most 64, as a deployment holds). The ids are
 * read first and the statement finished before any hook runs: a hook writes (audit, purge), and a
 * write begun inside a read that another process's commit has overtaken fails in WAL mode
 * (SQLITE_BUSY_SNAPSHOT) however long it waits; the live capture's exit commits just then.
 */
static int purge_watchlists(struct mgmt_db *db, int64_t id, mgmt_purge_fn *purge, void *arg)
{
	char ids[64][65];
	sqlite3_stmt *st;
	int rc = 0, n = 0;

	if (!purge)
		return 0;
	if (sqlite3_prepare_v2(db->sql, "SELECT watchlist_id FROM deployment_watchlists WHERE deployment_id = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	while (n < 64 && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *w = sqlite3_column_text(st, 0);
		snprintf(ids[n++], sizeof(ids[0]), "%s", w ? (const char *)w : "");
	}
	sqlite3_finalize(st);
	for (int i = 0; rc == 0 && i < n; i++)
		rc = purge(arg, id, ids[i]);
	return rc;
}

static int end_deployment(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, const char *action,
			  const char *reason, mgmt_purge_fn *purge, void *purge_arg)
{
	char object[32], detail[1100], e_reason[1024];
	int rc;

	/* Purge first: if the purge fails the deployment stays active and is retried, never marked
	 * ended with its watchlist still loaded. */
	rc = purge_watchlists(db, id, purge, purge_arg);
	if (rc < 0)
		return rc;
	rc = mgmt_tx_begin(db);
	if (rc < 0)
		return rc;
	snprintf(object, sizeof(object), "deployment/%" PRId64, id);
	json_escape(e_reason, sizeof(e_reason), reason ? reason : "");
	snprintf(detail, sizeof(detail), "{\"reason\":\"%s\",\"watchlists_purged\":true}", e_reason);
	rc = transition(db, id, MGMT_DEPLOYMENT_ACTIVE, MGMT_DEPLOYMENT_ENDED, NULL, NULL);
	if (rc == -EALREADY) /* an authorised deployment that never started can end too */
		rc = transition(db, id, MGMT_DEPLOYMENT_AUTHORISED, MGMT_DEPLOYMENT_ENDED, NULL, NULL);
	if (rc == 0)
		rc = mgmt_audit_append_tx(db, who, action, object, detail, NULL);
	if (rc < 0 || (rc = mgmt_tx_commit(db)) < 0) {
		mgmt_tx_rollback(db);
		return rc;
	}
	return mgmt_audit_anchor_update(db);
}

int mgmt_deployment_stop(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, const char *reason,
			 mgmt_purge_fn *purge, void *purge_arg, char *err, size_t errlen)
{
	int rc;

	if (!who || !(who->roles & (MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER)))
		return vg_errf(err, errlen, -EPERM, "stopping a deployment needs the operator or authoriser role");
	if ((rc = mgmt_text_check("the reason for stopping", reason, 511, true, err, errlen)) < 0)
		return rc;
	rc = end_deployment(db, who, id, "deployment.stop", reason, purge, purge_arg);
	if (rc == -EALREADY)
		return vg_errf(err, errlen, rc, "deployment %" PRId64 " is not running", id);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "deployment %" PRId64 " did not stop: %s", id, vg_strerror(rc));
	return 0;
}

int mgmt_deployment_expire(struct mgmt_db *db, int64_t now_s, mgmt_purge_fn *purge, void *purge_arg)
{
	static const struct mgmt_actor vigild = { "vigild", 0, 0 };
	int64_t ids[64];
	int n = 0, ended = 0, rc = 0;
	sqlite3_stmt *st;

	/* At most 64 a call: a caller on a timer comes back for the rest. */
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT id FROM deployments WHERE state IN (?, ?) AND end_s <= ? ORDER BY id LIMIT 64",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int(st, 1, MGMT_DEPLOYMENT_ACTIVE);
	sqlite3_bind_int(st, 2, MGMT_DEPLOYMENT_AUTHORISED);
	sqlite3_bind_int64(st, 3, now_s);
	while (n < 64 && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	for (int i = 0; i < n; i++) {
		rc = end_deployment(db, &vigild, ids[i], "deployment.expire", "its authorised window closed", purge,
				    purge_arg);
		if (rc < 0)
			return rc;
		ended++;
	}
	return ended;
}

int mgmt_deployment_matching_allowed(struct mgmt_db *db, int64_t id, int64_t now_s)
{
	struct mgmt_deployment d;
	int rc = mgmt_deployment_get(db, id, &d);

	if (rc < 0)
		return rc == -ENOENT ? 0 : rc;
	return d.state == MGMT_DEPLOYMENT_ACTIVE && d.authorised_by[0] && now_s >= d.start_s && now_s < d.end_s;
}

int64_t mgmt_deployment_count(struct mgmt_db *db, enum mgmt_deployment_state state)
{
	sqlite3_stmt *st;
	int64_t n = -EIO;

	if (sqlite3_prepare_v2(db->sql, "SELECT COUNT(*) FROM deployments WHERE state = ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int(st, 1, (int)state);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

int mgmt_deployment_list(struct mgmt_db *db, size_t max, void (*fn)(void *arg, const struct mgmt_deployment *d),
			 void *arg)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(db->sql, "SELECT id FROM deployments ORDER BY id DESC LIMIT ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, max > INT32_MAX ? INT32_MAX : (int64_t)max);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mgmt_deployment d;

		if (mgmt_deployment_get(db, sqlite3_column_int64(st, 0), &d) == 0) {
			fn(arg, &d);
			n++;
		}
	}
	sqlite3_finalize(st);
	return n;
}

int64_t mgmt_deployment_matching_now(struct mgmt_db *db, int64_t now_s)
{
	sqlite3_stmt *st;
	int64_t id = 0;

	if (sqlite3_prepare_v2(db->sql, "SELECT id FROM deployments WHERE state = ? ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int(st, 1, MGMT_DEPLOYMENT_ACTIVE);
	while (!id && sqlite3_step(st) == SQLITE_ROW) {
		int64_t d = sqlite3_column_int64(st, 0);

		if (mgmt_deployment_matching_allowed(db, d, now_s) == 1)
			id = d;
	}
	sqlite3_finalize(st);
	return id;
}

int mgmt_deployment_watchlists(struct mgmt_db *db, int64_t id,
			       void (*fn)(void *arg, const struct mgmt_watchlist *w, const char *bound_seal), void *arg)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT watchlist_id, COALESCE(seal, '') FROM deployment_watchlists WHERE deployment_id = ?"
			       " ORDER BY 1",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mgmt_watchlist w;
		char seal[65];

		snprintf(seal, sizeof(seal), "%s", (const char *)sqlite3_column_text(st, 1));
		if (mgmt_watchlist_get(db, (const char *)sqlite3_column_text(st, 0), &w) == 0) {
			fn(arg, &w, seal);
			n++;
		}
	}
	sqlite3_finalize(st);
	return n;
}

struct seal_set {
	const char *const *seals;
	size_t n, bound, matched;
};

static void count_seal(void *arg, const struct mgmt_watchlist *w, const char *bound_seal)
{
	struct seal_set *s = arg;

	(void)w;
	s->bound++;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->seals[i], bound_seal) == 0) {
			s->matched++;
			break;
		}
}

int mgmt_deployment_seals_check(struct mgmt_db *db, int64_t id, const char *const *seals, size_t n, char *err,
				size_t errlen)
{
	struct seal_set s = { seals, n, 0, 0 };

	if (mgmt_deployment_watchlists(db, id, count_seal, &s) < 0)
		return vg_errf(err, errlen, -EIO, "database error");
	/* Every bound seal among those given, and nothing else given (seals are distinct per id). */
	if (s.bound == 0 || s.matched != s.bound || n != s.bound)
		return vg_errf(err, errlen, -ESTALE,
			       "deployment %" PRId64 " binds %zu watchlist seal%s, not the %zu given: review it again", id,
			       s.bound, s.bound == 1 ? "" : "s", n);
	return 0;
}
