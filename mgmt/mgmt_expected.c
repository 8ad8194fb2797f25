/*
 * The false alerts a deployment should be expected to raise (mgmt.h's struct mgmt_expected):
 * computed from the model's calibration (matcher/match_calib.h) and each watchlist's size and
 * threshold when the deployment is requested, kept with the request, audited with it and with the
 * authorisation, and published beside the false alerts reviewers actually rejected.
 *
 * Any thread that holds the database (the control loop).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "match_calib.h"
#include "mgmt_int.h"
#include "vg_base.h"

#define RATE_WINDOW_S (30 * 24 * 3600)

/* Combine a watchlist's FPIR into the chance that no watchlist raises a false alert. */
static void fold(double *none, double fpir)
{
	*none *= 1.0 - fpir;
}

void mgmt_expected_compute(const struct match_calib *calib, const uint64_t *subjects, const double *thresholds,
			   size_t n, double faces_per_hour, struct mgmt_expected *out)
{
	double none = 1, none_low = 1, none_high = 1;
	int below = 0, beyond = 0;

	memset(out, 0, sizeof(*out));
	out->faces_per_hour = faces_per_hour;
	if (!calib) {
		snprintf(out->statement, sizeof(out->statement),
			 "the model has no calibration: its false alerts cannot be stated (vigilctl eval --calibrate --save)");
		return;
	}
	out->stated = true;
	snprintf(out->calibration_seal, sizeof(out->calibration_seal), "%s", calib->seal);
	snprintf(out->model, sizeof(out->model), "%s", calib->model_id);
	for (size_t i = 0; i < n; i++) {
		double score = match_calib_score_of_threshold(calib->metric, thresholds[i]);
		struct match_calib_estimate e = match_calib_fpir(calib, score, subjects[i]);

		fold(&none, e.value);
		fold(&none_low, e.low);
		fold(&none_high, e.high);
		below += e.bound == -1;
		beyond += e.bound == 1;
	}
	out->per_1000 = 1000 * (1 - none);
	out->low = 1000 * (1 - none_low);
	out->high = 1000 * (1 - none_high);
	/* A watchlist the calibration bounds on one side only makes the whole figure a bound. */
	out->bound = beyond ? 1 : below ? -1 : 0;
	if (beyond)
		out->per_1000 = out->low;
	else if (below)
		out->per_1000 = out->high;
	snprintf(out->statement, sizeof(out->statement),
		 "from %" PRIu64 " impostor pairs of %" PRIu64 " people (%s)%s", calib->impostor_pairs,
		 calib->impostor_people, calib->source,
		 beyond ? "; a threshold admits more impostors than the calibration holds: only a lower bound"
		 : below ? "; the pairs cannot show a rate this low: only an upper bound"
			 : "");
}

double mgmt_measured_faces_per_hour(struct mgmt_db *db, int64_t now_s)
{
	sqlite3_stmt *st;
	double rate = 0;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT CAST(SUM(faces) AS REAL) / COUNT(*) FROM deployment_scans"
			       " WHERE faces > 0 AND hour_s >= ?",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, now_s - RATE_WINDOW_S);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		rate = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	return rate;
}

int mgmt_expected_store(struct mgmt_db *db, int64_t id, const struct mgmt_expected *e)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql,
			       "UPDATE deployments SET model = ?, expected_per_1000 = ?, expected_low = ?, expected_high = ?,"
			       " expected_bound = ?, expected_faces_per_hour = ?, calibration_seal = ?, expected_statement = ?"
			       " WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, e->model, -1, SQLITE_STATIC);
	if (e->stated) {
		sqlite3_bind_double(st, 2, e->per_1000);
		sqlite3_bind_double(st, 3, e->low);
		sqlite3_bind_double(st, 4, e->high);
		sqlite3_bind_int(st, 5, e->bound);
		sqlite3_bind_text(st, 7, e->calibration_seal, -1, SQLITE_STATIC);
	}
	sqlite3_bind_double(st, 6, e->faces_per_hour);
	sqlite3_bind_text(st, 8, e->statement, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int mgmt_deployment_expected(struct mgmt_db *db, int64_t id, struct mgmt_expected *out)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT COALESCE(model, ''), expected_per_1000, expected_low, expected_high,"
			       " COALESCE(expected_bound, 0), COALESCE(expected_faces_per_hour, 0),"
			       " COALESCE(calibration_seal, ''), COALESCE(expected_statement, '')"
			       " FROM deployments WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(out->model, sizeof(out->model), "%s", (const char *)sqlite3_column_text(st, 0));
		out->stated = sqlite3_column_type(st, 1) != SQLITE_NULL;
		out->per_1000 = sqlite3_column_double(st, 1);
		out->low = sqlite3_column_double(st, 2);
		out->high = sqlite3_column_double(st, 3);
		out->bound = sqlite3_column_int(st, 4);
		out->faces_per_hour = sqlite3_column_double(st, 5);
		snprintf(out->calibration_seal, sizeof(out->calibration_seal), "%s", (const char *)sqlite3_column_text(st, 6));
		snprintf(out->statement, sizeof(out->statement), "%s", (const char *)sqlite3_column_text(st, 7));
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

void mgmt_expected_text(const struct mgmt_expected *e, char *buf, size_t len)
{
	char hour[128] = "";

	if (!e->stated) {
		snprintf(buf, len, "expected false alerts: not stated (%s)", e->statement);
		return;
	}
	if (e->faces_per_hour > 0)
		snprintf(hour, sizeof(hour), "; about %.3g an hour at the %.0f faces an hour measured", e->per_1000 *
			 e->faces_per_hour / 1000, e->faces_per_hour);
	else
		snprintf(hour, sizeof(hour), "; no face rate measured yet for a figure per hour");
	if (e->bound == -1)
		snprintf(buf, len, "expected false alerts: at most %.3g per 1,000 faces%s (%s)", e->high, hour, e->statement);
	else if (e->bound == 1)
		snprintf(buf, len, "expected false alerts: at least %.3g per 1,000 faces%s (%s)", e->low, hour, e->statement);
	else
		snprintf(buf, len, "expected false alerts: %.3g per 1,000 faces (95%%: %.3g to %.3g)%s (%s)", e->per_1000, e->low,
			 e->high, hour, e->statement);
}

int mgmt_expected_json(const struct mgmt_expected *e, char *buf, size_t len)
{
	if (!e->stated)
		return snprintf(buf, len, "{\"stated\":false}");
	return snprintf(buf, len,
			"{\"stated\":true,\"per_1000\":%.6g,\"low\":%.6g,\"high\":%.6g,\"bound\":%d,\"faces_per_hour\":%.6g,"
			"\"model\":\"%s\",\"calibration\":\"%s\"}",
			e->per_1000, e->low, e->high, e->bound, e->faces_per_hour, e->model, e->calibration_seal);
}
