/*
 * The records a deployment leaves for checking afterwards (mgmt.h): its public figures hour by
 * hour (faces scanned, alerts and how they were judged), and the review outcomes still to be
 * handed to the evidence store, whose retention depends on them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mgmt_int.h"
#include "vg_base.h"


int mgmt_scanned_hour_add(struct mgmt_db *db, int64_t id, uint64_t n)
{
	sqlite3_stmt *st;
	int rc;

	if (n == 0)
		return 0;
	if (sqlite3_prepare_v2(db->sql,
			       "INSERT INTO deployment_scans (deployment_id, hour_s, faces) VALUES (?, ?, ?)"
			       " ON CONFLICT (deployment_id, hour_s) DO UPDATE SET faces = faces + excluded.faces",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)time(NULL) / 3600 * 3600);
	sqlite3_bind_int64(st, 3, (int64_t)n);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return rc;
}

int mgmt_deployment_transparency_hours(struct mgmt_db *db, int64_t id, struct mgmt_transparency_hour *out, size_t cap)
{
	struct mgmt_deployment d;
	sqlite3_stmt *st;
	int64_t first;
	size_t n;
	int rc = mgmt_deployment_get(db, id, &d);

	if (rc < 0)
		return rc;
	first = d.start_s / 3600 * 3600;
	n = (size_t)((d.end_s - first + 3599) / 3600);
	if (n > cap)
		n = cap;
	for (size_t i = 0; i < n; i++)
		out[i] = (struct mgmt_transparency_hour){ .hour_s = first + (int64_t)i * 3600 };
	/* Two grouped scans, one per table: cost bounded by the deployment's rows, not its hours. */
	if (sqlite3_prepare_v2(db->sql, "SELECT hour_s, faces FROM deployment_scans WHERE deployment_id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t h = sqlite3_column_int64(st, 0);
		if (h >= first && (size_t)((h - first) / 3600) < n)
			out[(h - first) / 3600].faces_scanned += (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT raised_ns / 1000000000 / 3600 * 3600 AS h, COUNT(*), SUM(outcome = 1), SUM(outcome = 2),"
			       " SUM(outcome = 0) FROM alerts WHERE deployment_id = ? GROUP BY h",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t h = sqlite3_column_int64(st, 0);
		if (h < first || (size_t)((h - first) / 3600) >= n)
			continue; /* outside the window: counted in the totals only */
		struct mgmt_transparency_hour *o = &out[(h - first) / 3600];
		o->alerts += (uint64_t)sqlite3_column_int64(st, 1);
		o->confirmed += (uint64_t)sqlite3_column_int64(st, 2);
		o->rejected += (uint64_t)sqlite3_column_int64(st, 3);
		o->unreviewed += (uint64_t)sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	return (int)n;
}

int mgmt_alert_outcome_pending(struct mgmt_db *db, struct mgmt_alert_outcome_todo *out, size_t cap)
{
	sqlite3_stmt *st;
	size_t n = 0;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT id, outcome, COALESCE(evidence, '') FROM alerts WHERE outcome != 0 AND"
			       " store_outcome_applied = 0 ORDER BY id LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)cap);
	while (n < cap && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *e = sqlite3_column_text(st, 2);

		out[n].alert = sqlite3_column_int64(st, 0);
		out[n].outcome = (enum mgmt_alert_outcome)sqlite3_column_int(st, 1);
		snprintf(out[n].evidence, sizeof(out[n].evidence), "%s", e ? (const char *)e : "");
		n++;
	}
	sqlite3_finalize(st);
	return (int)n;
}

int mgmt_alert_outcome_applied(struct mgmt_db *db, int64_t id)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql, "UPDATE alerts SET store_outcome_applied = 1 WHERE id = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return rc == 0 && sqlite3_changes(db->sql) != 1 ? -ENOENT : rc;
}
