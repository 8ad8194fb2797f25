/*
 * The state database (mgmt.h): opening, versioned migrations, transactions, and the
 * hash-chained audit log with its head anchor.
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

/* ---- audit chain ---------------------------------------------------------------------------- */

static void hash_u64(crypto_generichash_state *h, uint64_t v)
{
	unsigned char le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(v >> (8 * i));
	crypto_generichash_update(h, le, sizeof(le));
}

static void hash_text(crypto_generichash_state *h, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	/* NULL and "" differ: NULL is length 2^64-1. */
	hash_u64(h, s ? (uint64_t)len : UINT64_MAX);
	crypto_generichash_update(h, (const unsigned char *)(s ? s : ""), len);
}

static void entry_hash(const unsigned char prev[MGMT_AUDIT_HASH_BYTES], int64_t seq, int64_t ts_ns, const char *actor,
		       int64_t uid, const char *action, const char *object, const char *detail,
		       unsigned char out[MGMT_AUDIT_HASH_BYTES])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, NULL, 0, MGMT_AUDIT_HASH_BYTES);
	crypto_generichash_update(&h, prev, MGMT_AUDIT_HASH_BYTES);
	hash_u64(&h, (uint64_t)seq);
	hash_u64(&h, (uint64_t)ts_ns);
	hash_text(&h, actor);
	hash_u64(&h, (uint64_t)uid);
	hash_text(&h, action);
	hash_text(&h, object);
	hash_text(&h, detail);
	crypto_generichash_final(&h, out, MGMT_AUDIT_HASH_BYTES);
}

/* The last entry's seq and hash; seq 0 and a zero hash for an empty log. */
static int chain_head(struct mgmt_db *db, int64_t *seq, unsigned char hash[MGMT_AUDIT_HASH_BYTES])
{
	sqlite3_stmt *st;
	int rc = 0;

	*seq = 0;
	memset(hash, 0, MGMT_AUDIT_HASH_BYTES);
	if (sqlite3_prepare_v2(db->sql, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		*seq = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) != MGMT_AUDIT_HASH_BYTES)
			rc = -EBADMSG;
		else
			memcpy(hash, sqlite3_column_blob(st, 1), MGMT_AUDIT_HASH_BYTES);
		break;
	case SQLITE_DONE:
		break;
	default:
		rc = -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

int mgmt_audit_append_tx(struct mgmt_db *db, const struct mgmt_actor *who, const char *action, const char *object,
			 const char *detail, int64_t *seq_out)
{
	unsigned char prev[MGMT_AUDIT_HASH_BYTES], hash[MGMT_AUDIT_HASH_BYTES];
	int64_t seq, ts = (int64_t)vg_clock_realtime_ns();
	sqlite3_stmt *st;
	int rc;

	if (!who || !who->name || !*who->name || !action || !*action || !object)
		return -EINVAL;
	rc = chain_head(db, &seq, prev);
	if (rc < 0)
		return rc;
	seq++;
	entry_hash(prev, seq, ts, who->name, who->uid, action, object, detail, hash);
	if (sqlite3_prepare_v2(db->sql,
			       "INSERT INTO audit (seq, ts_ns, actor, uid, action, object, detail, prev_hash, hash)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, who->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, who->uid);
	sqlite3_bind_text(st, 5, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, object, -1, SQLITE_STATIC);
	if (detail)
		sqlite3_bind_text(st, 7, detail, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_blob(st, 8, prev, sizeof(prev), SQLITE_STATIC);
	sqlite3_bind_blob(st, 9, hash, sizeof(hash), SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	if (rc < 0)
		VG_LOG(MGMT, ERR, "audit append: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(st);
	if (rc == 0 && seq_out)
		*seq_out = seq;
	return rc;
}

int mgmt_audit_anchor_update(struct mgmt_db *db)
{
	unsigned char hash[MGMT_AUDIT_HASH_BYTES];
	char hex[2 * MGMT_AUDIT_HASH_BYTES + 1], *tmp;
	int64_t seq;
	int fd, rc;

	rc = chain_head(db, &seq, hash);
	if (rc < 0)
		return rc;
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	if (asprintf(&tmp, "%s.tmp", db->anchor_path) < 0)
		return -ENOMEM;
	/* Write, sync, rename: the anchor is always a whole old or a whole new head. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out_free_tmp;
	}
	if (dprintf(fd, "%" PRId64 " %s\n", seq, hex) < 0 || fsync(fd) < 0)
		rc = -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, db->anchor_path) < 0)
		rc = -errno;
out_free_tmp:
	free(tmp);
	return rc;
}

int mgmt_audit_append(struct mgmt_db *db, const struct mgmt_actor *who, const char *action, const char *object,
		      const char *detail, int64_t *seq)
{
	int rc = mgmt_tx_begin(db);

	if (rc < 0)
		return rc;
	rc = mgmt_audit_append_tx(db, who, action, object, detail, seq);
	if (rc < 0) {
		mgmt_tx_rollback(db);
		return rc;
	}
	rc = mgmt_tx_commit(db);
	return rc < 0 ? rc : mgmt_audit_anchor_update(db);
}

static int bad(struct mgmt_audit_report *r, int64_t seq, const char *fmt, ...) VG_PRINTF(3, 4);
static int bad(struct mgmt_audit_report *r, int64_t seq, const char *fmt, ...)
{
	va_list ap;

	r->first_bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

int mgmt_audit_verify(struct mgmt_db *db, struct mgmt_audit_report *r)
{
	unsigned char prev[MGMT_AUDIT_HASH_BYTES] = { 0 }, want[MGMT_AUDIT_HASH_BYTES];
	int64_t expect_seq = 1, anchor_seq = 0;
	char anchor_hex[2 * MGMT_AUDIT_HASH_BYTES + 2] = "";
	bool anchor_seen = false;
	sqlite3_stmt *st;
	FILE *f;
	int rc = 0, step;

	memset(r, 0, sizeof(*r));
	f = fopen(db->anchor_path, "r");
	if (f) {
		if (fscanf(f, "%" SCNd64 " %65s", &anchor_seq, anchor_hex) != 2)
			anchor_seq = -1;
		fclose(f);
	}
	if (anchor_seq < 0)
		return bad(r, 1, "the audit head anchor %s is unreadable", db->anchor_path);

	/* Cost: one pass over the log, one hash per entry (about 1 us each). */
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT seq, ts_ns, actor, uid, action, object, detail, prev_hash, hash"
			       " FROM audit ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);

		r->entries++;
		if (seq != expect_seq) {
			rc = bad(r, expect_seq, "entry %" PRId64 " is %s", expect_seq,
				 seq > expect_seq ? "missing" : "out of order");
			break;
		}
		if (sqlite3_column_bytes(st, 7) != MGMT_AUDIT_HASH_BYTES ||
		    sqlite3_column_bytes(st, 8) != MGMT_AUDIT_HASH_BYTES ||
		    memcmp(sqlite3_column_blob(st, 7), prev, MGMT_AUDIT_HASH_BYTES) != 0) {
			rc = bad(r, seq, "entry %" PRId64 " does not follow the entry before it", seq);
			break;
		}
		entry_hash(prev, seq, sqlite3_column_int64(st, 1), (const char *)sqlite3_column_text(st, 2),
			   sqlite3_column_int64(st, 3), (const char *)sqlite3_column_text(st, 4),
			   (const char *)sqlite3_column_text(st, 5), (const char *)sqlite3_column_text(st, 6), want);
		if (memcmp(want, sqlite3_column_blob(st, 8), MGMT_AUDIT_HASH_BYTES) != 0) {
			rc = bad(r, seq, "entry %" PRId64 " was altered after it was written", seq);
			break;
		}
		memcpy(prev, want, sizeof(prev));
		if (seq == anchor_seq) {
			char hex[2 * MGMT_AUDIT_HASH_BYTES + 1];

			sodium_bin2hex(hex, sizeof(hex), want, sizeof(want));
			if (strcmp(hex, anchor_hex) != 0) {
				rc = bad(r, seq, "entry %" PRId64 " differs from the anchored head", seq);
				break;
			}
			anchor_seen = true;
		}
		expect_seq++;
	}
	sqlite3_finalize(st);
	if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
		return -EIO;
	if (rc == 0 && anchor_seq > 0 && !anchor_seen)
		rc = bad(r, expect_seq, "entries %" PRId64 "..%" PRId64 " were cut off the end of the log", expect_seq,
			 anchor_seq);
	return rc;
}
