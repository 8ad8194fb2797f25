/*
 * Alerts (mgmt.h): raised by the pipeline inside an active deployment, each waiting for a
 * person's decision (invariant 3); the decision and who made it are kept and audited, and feed
 * the deployment's transparency figures.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mgmt_int.h"
#include "vg_base.h"
#include "vg_clock.h"

static void copy_text(char *dst, size_t len, const unsigned char *src)
{
	snprintf(dst, len, "%s", src ? (const char *)src : "");
}

/* Whether deployment DEP's authorisation bound watchlist ID by SEAL: 0, -EPERM if not, -EIO. */
static int bound_seal(struct mgmt_db *db, int64_t dep, const char *id, const char *seal)
{
	sqlite3_stmt *st;
	int rc;

	if (!seal[0])
		return -EPERM;
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT 1 FROM deployment_watchlists WHERE deployment_id = ? AND watchlist_id = ? AND seal = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, dep);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, seal, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -EPERM : -EIO;
}

int mgmt_alert_raise(struct mgmt_db *db, const struct mgmt_actor *who, struct mgmt_alert *a)
{
	char object[48], detail[400];
	sqlite3_stmt *st;
	int rc;

	struct mgmt_deployment d;

	/* The window was checked when matching started (mgmt_deployment_matching_allowed); an alert
	 * needs its deployment still active, so none lands after the deployment ended. */
	rc = mgmt_deployment_get(db, a->deployment, &d);
	if (rc < 0)
		return rc;
	if (d.state != MGMT_DEPLOYMENT_ACTIVE)
		return -EPERM;
	/* Invariant 2-3: an alert is of a watchlist this deployment's authorisation bound by its seal,
	 * and names that seal, so the reviewer is shown that very watchlist's enrolment crop. */
	rc = bound_seal(db, a->deployment, a->watchlist, a->watchlist_seal);
	if (rc < 0)
		return rc;
	rc = mgmt_tx_begin(db);
	if (rc < 0)
		return rc;
	if (sqlite3_prepare_v2(db->sql,
			       "INSERT INTO alerts (deployment_id, camera, pts, track, subject, watchlist, metric, value,"
			       " threshold, box_x, box_y, box_w, box_h, evidence, raised_ns, watchlist_seal)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		goto out_rollback;
	sqlite3_bind_int64(st, 1, a->deployment);
	sqlite3_bind_text(st, 2, a->camera, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, a->pts);
	sqlite3_bind_int64(st, 4, (int64_t)a->track);
	sqlite3_bind_text(st, 5, a->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->watchlist, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, a->metric, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 8, a->value);
	sqlite3_bind_double(st, 9, a->threshold);
	for (int i = 0; i < 4; i++)
		sqlite3_bind_int(st, 10 + i, a->box[i]);
	if (a->evidence[0])
		sqlite3_bind_text(st, 14, a->evidence, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 14);
	sqlite3_bind_int64(st, 15, (int64_t)vg_clock_realtime_ns());
	sqlite3_bind_text(st, 16, a->watchlist_seal, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto out_rollback;
	a->id = sqlite3_last_insert_rowid(db->sql);
	a->outcome = MGMT_ALERT_UNREVIEWED;
	/* The audit entry names the alert, not the face: no biometric data in the log. */
	snprintf(object, sizeof(object), "alert/%" PRId64, a->id);
	snprintf(detail, sizeof(detail),
		 "{\"deployment\":%" PRId64 ",\"camera\":\"%s\",\"value\":%.4f,\"evidence_saved\":%s,"
		 "\"watchlist\":\"%.16s\",\"watchlist_seal\":\"%.64s\"}",
		 a->deployment, a->camera, a->value, a->evidence[0] ? "true" : "false", a->watchlist, a->watchlist_seal);
	if (mgmt_audit_append_tx(db, who, "alert.raise", object, detail, NULL) < 0)
		goto out_rollback;
	rc = mgmt_tx_commit(db);
	return rc < 0 ? rc : mgmt_audit_anchor_update(db);
out_rollback:
	mgmt_tx_rollback(db);
	return -EIO;
}

int mgmt_alert_get(struct mgmt_db *db, int64_t id, struct mgmt_alert *a)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT deployment_id, camera, pts, track, subject, watchlist, metric, value, threshold,"
			       " box_x, box_y, box_w, box_h, COALESCE(evidence, ''), outcome, COALESCE(reviewed_by, ''),"
			       " COALESCE(note, ''), COALESCE(watchlist_seal, '') FROM alerts WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(a, 0, sizeof(*a));
		a->id = id;
		a->deployment = sqlite3_column_int64(st, 0);
		copy_text(a->camera, sizeof(a->camera), sqlite3_column_text(st, 1));
		a->pts = sqlite3_column_int64(st, 2);
		a->track = (uint64_t)sqlite3_column_int64(st, 3);
		copy_text(a->subject, sizeof(a->subject), sqlite3_column_text(st, 4));
		copy_text(a->watchlist, sizeof(a->watchlist), sqlite3_column_text(st, 5));
		copy_text(a->metric, sizeof(a->metric), sqlite3_column_text(st, 6));
		a->value = sqlite3_column_double(st, 7);
		a->threshold = sqlite3_column_double(st, 8);
		for (int i = 0; i < 4; i++)
			a->box[i] = sqlite3_column_int(st, 9 + i);
		copy_text(a->evidence, sizeof(a->evidence), sqlite3_column_text(st, 13));
		a->outcome = (enum mgmt_alert_outcome)sqlite3_column_int(st, 14);
		copy_text(a->reviewed_by, sizeof(a->reviewed_by), sqlite3_column_text(st, 15));
		copy_text(a->note, sizeof(a->note), sqlite3_column_text(st, 16));
		copy_text(a->watchlist_seal, sizeof(a->watchlist_seal), sqlite3_column_text(st, 17));
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

int mgmt_alert_review(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, bool confirm, const char *note,
		      char *err, size_t errlen)
{
	char object[48];
	sqlite3_stmt *st;
	int rc;

	if (!who || !(who->roles & MGMT_ROLE_OPERATOR))
		return vg_errf(err, errlen, -EPERM, "reviewing alerts needs the operator role");
	if ((rc = mgmt_text_check("a review's note", note, 511, true, err, errlen)) < 0)
		return rc;
	rc = mgmt_tx_begin(db);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database busy or failing");
	if (sqlite3_prepare_v2(db->sql,
			       "UPDATE alerts SET outcome = ?, reviewed_by = ?, reviewed_ns = ?, note = ?"
			       " WHERE id = ? AND outcome = 0",
			       -1, &st, NULL) != SQLITE_OK) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	sqlite3_bind_int(st, 1, confirm ? MGMT_ALERT_CONFIRMED : MGMT_ALERT_REJECTED);
	sqlite3_bind_text(st, 2, who->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)vg_clock_realtime_ns());
	sqlite3_bind_text(st, 4, note, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (rc == 0 && sqlite3_changes(db->sql) != 1) {
		struct mgmt_alert a;
		mgmt_tx_rollback(db);
		return mgmt_alert_get(db, id, &a) == 0 ? vg_errf(err, errlen, -EALREADY, "alert %" PRId64 " was already reviewed", id)
						       : vg_errf(err, errlen, -ENOENT, "no alert %" PRId64, id);
	}
	snprintf(object, sizeof(object), "alert/%" PRId64, id);
	if (rc == 0)
		rc = mgmt_audit_append_tx(db, who, confirm ? "alert.confirm" : "alert.reject", object, NULL, NULL);
	if (rc < 0 || (rc = mgmt_tx_commit(db)) < 0) {
		mgmt_tx_rollback(db);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	return mgmt_audit_anchor_update(db);
}

int mgmt_deployment_add_scanned(struct mgmt_db *db, int64_t id, uint64_t n)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql, "UPDATE deployments SET faces_scanned = faces_scanned + ? WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)n);
	sqlite3_bind_int64(st, 2, id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (rc == 0 && sqlite3_changes(db->sql) != 1)
		return -ENOENT;
	return rc < 0 ? rc : mgmt_scanned_hour_add(db, id, n);
}

int mgmt_deployment_transparency(struct mgmt_db *db, int64_t id, struct mgmt_transparency *out)
{
	sqlite3_stmt *st;
	int rc = -ENOENT;

	memset(out, 0, sizeof(*out));
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT d.faces_scanned, COUNT(a.id), COALESCE(SUM(a.outcome = 1), 0),"
			       " COALESCE(SUM(a.outcome = 2), 0), COALESCE(SUM(a.outcome = 0), 0)"
			       " FROM deployments d LEFT JOIN alerts a ON a.deployment_id = d.id WHERE d.id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		out->faces_scanned = (uint64_t)sqlite3_column_int64(st, 0);
		out->alerts = (uint64_t)sqlite3_column_int64(st, 1);
		out->confirmed = (uint64_t)sqlite3_column_int64(st, 2);
		out->rejected = (uint64_t)sqlite3_column_int64(st, 3);
		out->unreviewed = (uint64_t)sqlite3_column_int64(st, 4);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

int mgmt_alert_set_evidence(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, const char *evidence)
{
	char object[48];
	sqlite3_stmt *st;
	int rc = mgmt_tx_begin(db);

	if (rc < 0)
		return rc;
	if (sqlite3_prepare_v2(db->sql, "UPDATE alerts SET evidence = ? WHERE id = ? AND outcome = 0", -1, &st, NULL) !=
	    SQLITE_OK) {
		mgmt_tx_rollback(db);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, evidence, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (rc == 0 && sqlite3_changes(db->sql) != 1) {
		struct mgmt_alert a;
		mgmt_tx_rollback(db);
		return mgmt_alert_get(db, id, &a) == 0 ? -EALREADY : -ENOENT;
	}
	snprintf(object, sizeof(object), "alert/%" PRId64, id);
	if (rc == 0)
		rc = mgmt_audit_append_tx(db, who, "alert.evidence.better", object, NULL, NULL);
	if (rc < 0 || (rc = mgmt_tx_commit(db)) < 0) {
		mgmt_tx_rollback(db);
		return rc;
	}
	return mgmt_audit_anchor_update(db);
}

int mgmt_alert_list(struct mgmt_db *db, bool unreviewed_only, size_t max,
		    void (*fn)(void *arg, const struct mgmt_alert *a), void *arg)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(db->sql,
			       unreviewed_only ? "SELECT id FROM alerts WHERE outcome = 0 ORDER BY id LIMIT ?"
					       : "SELECT id FROM alerts ORDER BY id DESC LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, max > INT32_MAX ? INT32_MAX : (int64_t)max);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mgmt_alert a;

		if (mgmt_alert_get(db, sqlite3_column_int64(st, 0), &a) == 0) {
			fn(arg, &a);
			n++;
		}
	}
	sqlite3_finalize(st);
	return n;
}
