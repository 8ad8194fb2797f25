/*
 * vigild's run-time settings and the evidence retention periods (mgmt.h), and their control-socket
 * actions config.get|set and retention.show|set.
 *
 * A setting changed with config.set is kept in the settings table and outranks the config file:
 * mgmt_settings_load() applies the table over what the file said, at start and at every SIGHUP
 * reload, so a change survives a restart and a reload alike. Only run-time-mutable, non-secret
 * settings are kept there: a secret never reaches the database or the audit log, and a
 * restart-only one belongs in the file, where the restart that applies it reads it.
 */
#include <errno.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_log.h"

#define SETTING_TEXT_MAX 8448 /* the longest setting (vigild.people, 8192) and room to spare */
#define DAY_S 86400ull
#define RETENTION_DAYS_MAX 3650

int mgmt_settings_load(struct mgmt_db *db, const struct vg_conf_set *set, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int applied = 0;

	if (sqlite3_prepare_v2(db->sql, "SELECT name, value FROM settings ORDER BY name", -1, &st, NULL) != SQLITE_OK)
		return vg_errf(err, errlen, -EIO, "cannot read the stored settings: %s", sqlite3_errmsg(db->sql));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *value = (const char *)sqlite3_column_text(st, 1);
		const struct vg_conf_entry *e = name ? vg_conf_find(set, name) : NULL;
		char why[512];

		/* A newer or older vigild may read this table: what it cannot take is skipped, so a
		 * stored setting can never keep vigild from starting. */
		if (!e || !value || !(e->flags & VG_CONF_MUTABLE) || (e->flags & VG_CONF_SECRET)) {
			VG_LOG(MGMT, WARN, "stored setting %.64s skipped: not a run-time setting of this vigild",
			       name ? name : "?");
			continue;
		}
		if (vg_conf_set_value(set, name, value, false, why, sizeof(why)) < 0) {
			VG_LOG(MGMT, WARN, "stored setting skipped: %s", why);
			continue;
		}
		applied++;
	}
	sqlite3_finalize(st);
	return applied;
}

bool mgmt_setting_stored(struct mgmt_db *db, const char *name)
{
	sqlite3_stmt *st;
	bool stored = false;

	if (sqlite3_prepare_v2(db->sql, "SELECT 1 FROM settings WHERE name = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		stored = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	return stored;
}

/*
 * Parse NAME=VALUE into copies of the live objects: the table's own one-line reason when it is
 * not a valid value, else its text as the file would hold it in NEW_TEXT (what the audit shows
 * beside the old value, in the same form). Nothing live changes.
 */
static int check_value(const struct vg_conf_set *set, const char *name, const char *value, char *new_text, size_t len,
		       char *err, size_t errlen)
{
	void **copies = calloc(set->n ? set->n : 1, sizeof(*copies));
	int rc = copies ? 0 : -ENOMEM;

	for (size_t t = 0; t < set->n && rc == 0; t++) {
		copies[t] = malloc(set->tables[t]->obj_size);
		if (copies[t])
			memcpy(copies[t], set->objs[t], set->tables[t]->obj_size);
		else
			rc = -ENOMEM;
	}
	if (rc < 0) {
		vg_errf(err, errlen, rc, "out of memory");
	} else {
		struct vg_conf_set scratch = { set->tables, copies, set->n };

		rc = vg_conf_set_value(&scratch, name, value, true, err, errlen);
		if (rc == 0 && vg_conf_get_value(&scratch, name, new_text, len) < 0)
			rc = vg_errf(err, errlen, -ERANGE, "%s: the value is too long", name);
	}
	for (size_t t = 0; copies && t < set->n; t++)
		free(copies[t]);
	free(copies);
	return rc;
}

int mgmt_setting_set(struct mgmt_db *db, const struct mgmt_actor *who, const struct vg_conf_set *set,
		     const char *name, const char *value, mgmt_conf_apply_fn *apply, void *apply_arg, char *old,
		     size_t oldlen, char *err, size_t errlen)
{
	const struct vg_conf_entry *e = vg_conf_find(set, name);
	char *new_text = NULL, *detail = NULL, object[96];
	sqlite3_stmt *st;
	json_t *dj;
	int rc;

	if (!e)
		return vg_errf(err, errlen, -ENOENT, "unknown setting '%.64s' (vigilctl config get lists them)", name);
	if (!(e->flags & VG_CONF_MUTABLE))
		return vg_errf(err, errlen, -EPERM,
			       "%s is read at start-up only: change it in the config file and restart vigild", e->name);
	if (e->flags & VG_CONF_SECRET)
		return vg_errf(err, errlen, -EPERM, "%s is a secret: set it in the config file, not here", e->name);
	if (strlen(value) >= SETTING_TEXT_MAX)
		return vg_errf(err, errlen, -ERANGE, "%s: the value is too long", e->name);
	new_text = malloc(SETTING_TEXT_MAX);
	if (!new_text)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	if (vg_conf_get_value(set, e->name, old, oldlen) < 0)
		old[0] = '\0';
	rc = check_value(set, e->name, value, new_text, SETTING_TEXT_MAX, err, errlen);
	if (rc < 0)
		goto out_free;
	dj = json_pack("{s:s, s:s, s:s}", "name", e->name, "old", old, "new", new_text);
	detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
	json_decref(dj);
	if (!detail) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_free;
	}

	/* The row, its audit entry and the running value change together: applied inside the
	 * transaction, so a value vigild refuses leaves neither a row nor an entry behind. */
	rc = mgmt_tx_begin(db);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "database error");
		goto out_free;
	}
	if (sqlite3_prepare_v2(db->sql, "INSERT OR REPLACE INTO settings (name, value, set_by, set_ns) VALUES (?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = vg_errf(err, errlen, -EIO, "database error");
		goto out_rollback;
	}
	sqlite3_bind_text(st, 1, e->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, who->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)vg_clock_realtime_ns());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	snprintf(object, sizeof(object), "setting/%.80s", e->name);
	if (rc == 0)
		rc = mgmt_audit_append_tx(db, who, "config.set", object, detail, NULL);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "database error");
		goto out_rollback;
	}
	rc = apply(apply_arg, who, e->name, value, err, errlen);
	if (rc < 0)
		goto out_rollback;
	rc = mgmt_tx_commit(db);
	if (rc < 0) {
		/* Not kept, so not running either: put the old value back. */
		char ignored[256];

		apply(apply_arg, who, e->name, old, ignored, sizeof(ignored));
		vg_errf(err, errlen, rc, "database error: %s unchanged", e->name);
		goto out_free;
	}
	mgmt_audit_anchor_update(db);
	VG_LOG(MGMT, NOTICE, "%s set by %s", e->name, who->name);
	goto out_free;

out_rollback:
	mgmt_tx_rollback(db);
out_free:
	free(detail);
	free(new_text);
	return rc;
}

/* ---- retention ------------------------------------------------------------------------------ */

static const char *const outcome_names[] = { "unreviewed", "confirmed", "rejected" };

int mgmt_retention_get(struct mgmt_db *db, struct mgmt_retention *out)
{
	/* The store's own defaults (store.h), so an appliance nobody configured keeps what it did. */
	struct mgmt_retention r = { .confirmed_s = 31 * DAY_S, .rejected_s = DAY_S, .unreviewed_s = DAY_S };
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db->sql, "SELECT outcome, seconds FROM retention", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(st, 0);
		int64_t s = sqlite3_column_int64(st, 1);

		if (!o || s < 0)
			continue;
		/* The store reads 0 as "its default": a period of 0 days is one second, gone at the next sweep. */
		if (s == 0)
			s = 1;
		if (strcmp(o, "confirmed") == 0)
			r.confirmed_s = (uint64_t)s;
		else if (strcmp(o, "rejected") == 0)
			r.rejected_s = (uint64_t)s;
		else if (strcmp(o, "unreviewed") == 0)
			r.unreviewed_s = (uint64_t)s;
	}
	sqlite3_finalize(st);
	*out = r;
	return 0;
}

/* The audit detail of a retention change: the same fields retention.show replies with. */
static json_t *retention_json(const struct mgmt_retention *r)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "confirmed_days", (json_int_t)(r->confirmed_s / DAY_S),
			 "rejected_days", (json_int_t)(r->rejected_s / DAY_S), "unreviewed_days",
			 (json_int_t)(r->unreviewed_s / DAY_S), "confirmed_s", (json_int_t)r->confirmed_s,
			 "rejected_s", (json_int_t)r->rejected_s, "unreviewed_s", (json_int_t)r->unreviewed_s);
}

int mgmt_retention_set(struct mgmt_db *db, const struct mgmt_actor *who, const struct mgmt_retention *r, char *err,
		       size_t errlen)
{
	const uint64_t secs[] = { r->unreviewed_s, r->confirmed_s, r->rejected_s };
	struct mgmt_retention old;
	json_t *dj;
	char *detail;
	sqlite3_stmt *st;
	int rc;

	if (!(who->roles & MGMT_ROLE_ADMIN))
		return vg_errf(err, errlen, -EPERM, "%s may not set retention: that needs the admin role", who->name);
	/* Unreviewed evidence must outlive the wait for a person's decision (invariant 3); a false
	 * alert's crop may go at the next sweep. */
	if (r->unreviewed_s < DAY_S || r->confirmed_s < DAY_S)
		return vg_errf(err, errlen, -ERANGE, "confirmed and unreviewed evidence is kept at least 1 day");
	if (r->unreviewed_s > RETENTION_DAYS_MAX * DAY_S || r->confirmed_s > RETENTION_DAYS_MAX * DAY_S ||
	    r->rejected_s > RETENTION_DAYS_MAX * DAY_S)
		return vg_errf(err, errlen, -ERANGE, "retention is at most %d days", RETENTION_DAYS_MAX);
	rc = mgmt_retention_get(db, &old);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database error");
	dj = json_pack("{s:o, s:o}", "old", retention_json(&old), "new", retention_json(r));
	detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
	json_decref(dj);
	if (!detail)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	rc = mgmt_tx_begin(db);
	if (rc < 0)
		goto out_free_detail;
	if (sqlite3_prepare_v2(db->sql,
			       "INSERT OR REPLACE INTO retention (outcome, seconds, set_by, set_ns) VALUES (?, ?, ?, ?)", -1,
			       &st, NULL) != SQLITE_OK) {
		rc = -EIO;
		goto out_rollback;
	}
	for (size_t i = 0; i < VG_ARRAY_SIZE(secs) && rc == 0; i++) {
		sqlite3_bind_text(st, 1, outcome_names[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)secs[i]);
		sqlite3_bind_text(st, 3, who->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)vg_clock_realtime_ns());
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc == 0)
		rc = mgmt_audit_append_tx(db, who, "retention.set", "retention", detail, NULL);
	if (rc < 0)
		goto out_rollback;
	rc = mgmt_tx_commit(db);
	if (rc == 0)
		rc = mgmt_audit_anchor_update(db);
	goto out_free_detail;

out_rollback:
	mgmt_tx_rollback(db);
out_free_detail:
	free(detail);
	return rc < 0 ? vg_errf(err, errlen, rc, "database error") : 0;
}
