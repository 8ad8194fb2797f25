/*
 * The state database (mgmt.h): opening, versioned migrations, transactions. The audit chain
 * written inside those transactions is mgmt_audit.c.
 *
 * Chain: hash(n) = BLAKE2b-256(hash(n-1) || seq || ts_ns || actor || uid || action || object ||
 * detail), each field length-prefixed (8 bytes little-endian) so that no two different entries
 * encode alike; hash(0) is 32 zero bytes. SQLite triggers refuse UPDATE and DELETE on the audit
 * table, which stops mistakes; verify is what catches a deliberate edit made around them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_log.h"

/* Migrations: entry i brings the schema from version i to i + 1. Append; never edit a shipped one. */
static const char *const migrations[] = {
	/* 0 -> 1: the audit log and deployments */
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, actor TEXT NOT NULL, uid INTEGER NOT NULL,"
	"  action TEXT NOT NULL, object TEXT NOT NULL, detail TEXT,"
	"  prev_hash BLOB NOT NULL, hash BLOB NOT NULL);"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	"CREATE TABLE deployments ("
	"  id INTEGER PRIMARY KEY, name TEXT NOT NULL, use_case INTEGER NOT NULL, location TEXT NOT NULL,"
	"  start_s INTEGER NOT NULL, end_s INTEGER NOT NULL, justification TEXT NOT NULL,"
	"  requested_by TEXT NOT NULL, requested_uid INTEGER NOT NULL,"
	"  authorised_by TEXT, authorised_uid INTEGER, authorise_reasons TEXT,"
	"  state INTEGER NOT NULL, created_ns INTEGER NOT NULL);"
	"CREATE TABLE deployment_watchlists ("
	"  deployment_id INTEGER NOT NULL REFERENCES deployments(id), watchlist_id TEXT NOT NULL,"
	"  PRIMARY KEY (deployment_id, watchlist_id));",
	/* 1 -> 2: alerts awaiting review, and the faces each deployment scanned (transparency) */
	"CREATE TABLE alerts ("
	"  id INTEGER PRIMARY KEY, deployment_id INTEGER NOT NULL REFERENCES deployments(id),"
	"  camera TEXT NOT NULL, pts INTEGER NOT NULL, track INTEGER NOT NULL, subject TEXT NOT NULL,"
	"  watchlist TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, threshold REAL NOT NULL,"
	"  box_x INTEGER, box_y INTEGER, box_w INTEGER, box_h INTEGER,"
	"  evidence TEXT, raised_ns INTEGER NOT NULL,"
	"  outcome INTEGER NOT NULL DEFAULT 0, reviewed_by TEXT, reviewed_ns INTEGER, note TEXT);"
	"ALTER TABLE deployments ADD COLUMN faces_scanned INTEGER NOT NULL DEFAULT 0;",
	/* 2 -> 3: watchlists as records (mgmt_watchlist.c), review outcomes the evidence store has yet
	 * to apply, and faces scanned per hour for the public record */
	"CREATE TABLE watchlists ("
	"  id TEXT PRIMARY KEY, name TEXT NOT NULL, threshold REAL NOT NULL, subjects INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL, path TEXT NOT NULL, faces_path TEXT, faces_key BLOB,"
	"  created_by TEXT NOT NULL, created_uid INTEGER NOT NULL, created_ns INTEGER NOT NULL,"
	"  state INTEGER NOT NULL DEFAULT 0, ended_by TEXT, ended_ns INTEGER, end_reason TEXT);"
	"ALTER TABLE alerts ADD COLUMN store_outcome_applied INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE deployment_scans ("
	"  deployment_id INTEGER NOT NULL REFERENCES deployments(id), hour_s INTEGER NOT NULL,"
	"  faces INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (deployment_id, hour_s));",
	/* 3 -> 4: cameras (credentials sealed, never in clear: mgmt_camera.c), settings changed with
	 * `vigilctl config set` (they outrank the config file), evidence retention per outcome */
	"CREATE TABLE cameras ("
	"  id TEXT PRIMARY KEY, url TEXT NOT NULL, location TEXT NOT NULL DEFAULT '', fps INTEGER NOT NULL,"
	"  credentials BLOB, added_by TEXT NOT NULL, added_uid INTEGER NOT NULL, added_ns INTEGER NOT NULL);"
	"CREATE TABLE settings ("
	"  name TEXT PRIMARY KEY, value TEXT NOT NULL, set_by TEXT NOT NULL, set_ns INTEGER NOT NULL);"
	"CREATE TABLE retention ("
	"  outcome TEXT PRIMARY KEY, seconds INTEGER NOT NULL, set_by TEXT NOT NULL, set_ns INTEGER NOT NULL);",
	/* 4 -> 5: the authorisation binds each watchlist by its seal, and an alert names the seal it
	 * matched, so that matching and review use exactly the watchlist that was authorised */
	"ALTER TABLE deployment_watchlists ADD COLUMN seal TEXT;"
	"ALTER TABLE alerts ADD COLUMN watchlist_seal TEXT;",
	/* 5 -> 6: the model a watchlist was enrolled with, and the false alerts a deployment's request
	 * was expected to raise (NULL: not stated, the model had no calibration) */
	"ALTER TABLE watchlists ADD COLUMN model TEXT;"
	"ALTER TABLE deployments ADD COLUMN model TEXT;"
	"ALTER TABLE deployments ADD COLUMN expected_per_1000 REAL;"
	"ALTER TABLE deployments ADD COLUMN expected_low REAL;"
	"ALTER TABLE deployments ADD COLUMN expected_high REAL;"
	"ALTER TABLE deployments ADD COLUMN expected_bound INTEGER;"
	"ALTER TABLE deployments ADD COLUMN expected_faces_per_hour REAL;"
	"ALTER TABLE deployments ADD COLUMN calibration_seal TEXT;"
	"ALTER TABLE deployments ADD COLUMN expected_statement TEXT;",
};
#define SCHEMA_VERSION ((int)VG_ARRAY_SIZE(migrations))

int mgmt_tx_begin(struct mgmt_db *db)
{
	if (sqlite3_exec(db->sql, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		VG_LOG(MGMT, ERR, "begin: %s", sqlite3_errmsg(db->sql));
		return -EIO;
	}
	return 0;
}

int mgmt_tx_commit(struct mgmt_db *db)
{
	if (sqlite3_exec(db->sql, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		VG_LOG(MGMT, ERR, "commit: %s", sqlite3_errmsg(db->sql));
		mgmt_tx_rollback(db);
		return -EIO;
	}
	return 0;
}

void mgmt_tx_rollback(struct mgmt_db *db)
{
	sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

static int migrate(struct mgmt_db *db, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int version;

	if (sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return vg_errf(err, errlen, -EIO, "cannot read the schema version: %s", sqlite3_errmsg(db->sql));
	version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (version < 0)
		return vg_errf(err, errlen, -EIO, "cannot read the schema version");
	if (version > SCHEMA_VERSION)
		return vg_errf(err, errlen, -EPROTO, "database schema %d is newer than this vigild's %d", version,
			       SCHEMA_VERSION);
	for (; version < SCHEMA_VERSION; version++) {
		char pragma[64];
		char *msg = NULL;

		/* Each step and its version bump commit together: a crash leaves the old or the new schema. */
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		if (mgmt_tx_begin(db) < 0)
			return vg_errf(err, errlen, -EIO, "cannot start migration %d", version + 1);
		if (sqlite3_exec(db->sql, migrations[version], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db->sql, pragma, NULL, NULL, &msg) != SQLITE_OK) {
			vg_errf(err, errlen, -EIO, "migration to schema %d failed: %s", version + 1, msg ? msg : "?");
			sqlite3_free(msg);
			mgmt_tx_rollback(db);
			return -EIO;
		}
		if (mgmt_tx_commit(db) < 0)
			return vg_errf(err, errlen, -EIO, "migration to schema %d did not commit", version + 1);
	}
	return 0;
}

int mgmt_db_open(struct mgmt_db **out, const char *path, char *err, size_t errlen)
{
	struct mgmt_db *db;
	int rc;

	if (sodium_init() < 0)
		return vg_errf(err, errlen, -EIO, "libsodium failed to initialise");
	db = calloc(1, sizeof(*db));
	if (!db)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	if (asprintf(&db->anchor_path, "%s-audit-head", path) < 0) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_free_db;
	}
	if (asprintf(&db->key_path, "%s-audit.key", path) < 0) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_free_anchor;
	}
	if (sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		rc = vg_errf(err, errlen, -EIO, "%s: %s", path, db->sql ? sqlite3_errmsg(db->sql) : "cannot open");
		goto out_close_sql;
	}
	sqlite3_busy_timeout(db->sql, 5000);
	/* WAL: readers (vigilctl queries) never block the writer; FULL sync: a committed state change
	 * and its audit entry survive a power cut. */
	if (sqlite3_exec(db->sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", NULL,
			 NULL, NULL) != SQLITE_OK) {
		rc = vg_errf(err, errlen, -EIO, "%s: %s", path, sqlite3_errmsg(db->sql));
		goto out_close_sql;
	}
	rc = migrate(db, err, errlen);
	if (rc < 0)
		goto out_close_sql;
	*out = db;
	return 0;

out_close_sql:
	sqlite3_close(db->sql);
	free(db->key_path);
out_free_anchor:
	free(db->anchor_path);
out_free_db:
	free(db);
	return rc;
}

void mgmt_db_close(struct mgmt_db **pdb)
{
	struct mgmt_db *db = *pdb;

	if (!db)
		return;
	sqlite3_close(db->sql);
	mgmt_audit_key_forget(db);
	free(db->key_path);
	free(db->anchor_path);
	free(db);
	*pdb = NULL;
}

int mgmt_db_schema_version(struct mgmt_db *db)
{
	sqlite3_stmt *st;
	int v = -EIO;

	if (sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	return v;
}
