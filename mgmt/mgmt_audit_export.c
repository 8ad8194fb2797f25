/*
 * audit.export (mgmt.h): the audit chain with every field its hashes cover, so that someone
 * holding only the export can check it offline (vigilctl(1) "AUDIT EXPORT" gives the recipe).
 * A page is at most 1000 entries and about 512 KiB, under vigilctl's 1 MiB reply cap; the first
 * page (since 0) first audits the export itself, so the export ends with its own record.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mgmt_int.h"
#include "vg_base.h"

#define EXPORT_PAGE_ENTRIES 1000
#define EXPORT_PAGE_BYTES (512u << 10)

static void hex_column(sqlite3_stmt *st, int col, char hex[2 * MGMT_AUDIT_HASH_BYTES + 1])
{
	/* A hash of the wrong length is exported as it is, for the offline check to find. */
	int n = sqlite3_column_bytes(st, col);
	const unsigned char *b = sqlite3_column_blob(st, col);

	if (n > MGMT_AUDIT_HASH_BYTES)
		n = MGMT_AUDIT_HASH_BYTES;
	sodium_bin2hex(hex, 2 * MGMT_AUDIT_HASH_BYTES + 1, b ? b : (const unsigned char *)"", b ? (size_t)n : 0);
}

static void iso_time(int64_t ts_ns, char *buf, size_t len)
{
	time_t s = (time_t)(ts_ns / 1000000000);
	struct tm tm;
	char day[32];

	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", gmtime_r(&s, &tm));
	snprintf(buf, len, "%s.%09" PRId64 "Z", day, ts_ns % 1000000000);
}

int mgmt_act_audit_export(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen)
{
	struct mgmt_db *db = mgmt_ctl_db(ctl);
	int64_t since = 0, last = 0;
	size_t bytes = 0;
	bool more = false;
	json_t *list;
	sqlite3_stmt *st;
	int rc;

	if ((rc = mgmt_arg_int(args, "since", false, &since, err, errlen)) < 0)
		return rc;
	if (since < 0)
		return vg_errf(err, errlen, -EINVAL, "argument 'since' must be 0 or more");
	if (since == 0 && (rc = mgmt_audit_append(db, who, "audit.export", "audit", NULL, NULL)) < 0)
		return vg_errf(err, errlen, rc, "cannot audit the export");
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT seq, ts_ns, actor, uid, action, object, detail, prev_hash, hash FROM audit"
			       " WHERE seq > ? ORDER BY seq LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK)
		return vg_errf(err, errlen, -EIO, "database error");
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int(st, 2, EXPORT_PAGE_ENTRIES + 1);
	list = json_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		char prev[2 * MGMT_AUDIT_HASH_BYTES + 1], hash[2 * MGMT_AUDIT_HASH_BYTES + 1], when[48];
		const char *detail = (const char *)sqlite3_column_text(st, 6);
		int64_t seq = sqlite3_column_int64(st, 0), ts = sqlite3_column_int64(st, 1);

		if (json_array_size(list) == EXPORT_PAGE_ENTRIES || bytes > EXPORT_PAGE_BYTES) {
			more = true;
			break;
		}
		hex_column(st, 7, prev);
		hex_column(st, 8, hash);
		iso_time(ts, when, sizeof(when));
		json_t *e = json_pack("{s:I, s:I, s:s, s:s, s:I, s:s, s:s, s:s?, s:s, s:s}", "seq", (json_int_t)seq,
				      "ts_ns", (json_int_t)ts, "time", when, "actor",
				      (const char *)sqlite3_column_text(st, 2), "uid", (json_int_t)sqlite3_column_int64(st, 3),
				      "action", (const char *)sqlite3_column_text(st, 4), "object",
				      (const char *)sqlite3_column_text(st, 5), "detail", detail, "prev_hash", prev, "hash",
				      hash);
		if (!e)
			continue; /* a NULL where the schema forbids one: verify names the entry */
		/* Escaping can at most double a field (\uXXXX is rare in what vigild writes). */
		bytes += 400 + 2 * (size_t)(sqlite3_column_bytes(st, 2) + sqlite3_column_bytes(st, 5) +
					    sqlite3_column_bytes(st, 6));
		json_array_append_new(list, e);
		last = seq;
	}
	sqlite3_finalize(st);
	*result = json_pack("{s:o, s:b, s:I}", "entries", list, "more", more, "last", (json_int_t)last);
	return 0;
}
