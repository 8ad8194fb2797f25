/*
 * mgmt audit chain: entries survive a restart, and `verify` finds an edited, a deleted, a
 * reordered and a cut-off entry, each at the right sequence number. The append-only triggers
 * refuse ordinary UPDATE and DELETE. A database from a newer vigild is refused, not damaged.
 *
 * The signed head, attacked as someone with the files would: an entry rewritten and the whole
 * chain and head file recomputed to match (the old signature kept, dropped, or made with a key of
 * their own), and the key file itself replaced and the head re-signed; verify refuses each, the
 * last against the public key it printed before. An old unsigned anchor reads as unsigned.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vg_test.h"
#include "mgmt.h"
#include "test_mgmt_common.h"

static const struct mgmt_actor admin = { "admin.smith", 1001, MGMT_ROLE_ADMIN };

static void fill(struct mgmt_db *db, int n)
{
	char object[32];

	for (int i = 0; i < n; i++) {
		snprintf(object, sizeof(object), "camera/cam%d", i + 1);
		CHECK_EQ_INT(mgmt_audit_append(db, &admin, "camera.add", object, "{\"url\":\"rtsp://10.0.0.9/s\"}", NULL),
			     0);
	}
}

static int verify_path(struct mgmt_audit_report *r)
{
	struct mgmt_db *db = NULL;
	char err[256];
	int rc;

	if (mgmt_db_open(&db, test_db_path, err, sizeof(err)) < 0)
		return -999;
	rc = mgmt_audit_verify(db, r);
	mgmt_db_close(&db);
	return rc;
}

/* ---- the attacker's tools: the chain's encoding (vigilctl(1) AUDIT EXPORT), written afresh ---- */

static void u64(crypto_generichash_state *h, uint64_t v)
{
	unsigned char le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(v >> (8 * i));
	crypto_generichash_update(h, le, 8);
}

static void str(crypto_generichash_state *h, const unsigned char *s, int len)
{
	u64(h, s ? (uint64_t)len : UINT64_MAX);
	if (s)
		crypto_generichash_update(h, s, (size_t)len);
}

/* Recompute every prev_hash and hash after an edit; the head's seq and hex hash to *SEQ, HEX. */
static void rechain(int64_t *seq, char hex[65])
{
	unsigned char prev[32] = { 0 };
	sqlite3_stmt *st, *up;
	sqlite3 *sql;

	CHECK(sqlite3_open(test_db_path, &sql) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(sql, "SELECT seq, ts_ns, actor, uid, action, object, detail FROM audit ORDER BY seq", -1,
				 &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(sql, "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", -1, &up, NULL) ==
	      SQLITE_OK);
	*seq = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		crypto_generichash_state h;
		unsigned char out[32];

		*seq = sqlite3_column_int64(st, 0);
		crypto_generichash_init(&h, NULL, 0, 32);
		crypto_generichash_update(&h, prev, 32);
		u64(&h, (uint64_t)*seq);
		u64(&h, (uint64_t)sqlite3_column_int64(st, 1));
		str(&h, sqlite3_column_text(st, 2), sqlite3_column_bytes(st, 2));
		u64(&h, (uint64_t)sqlite3_column_int64(st, 3));
		for (int c = 4; c <= 6; c++)
			str(&h, sqlite3_column_text(st, c), sqlite3_column_bytes(st, c));
		crypto_generichash_final(&h, out, 32);
		sqlite3_bind_blob(up, 1, prev, 32, SQLITE_TRANSIENT);
		sqlite3_bind_blob(up, 2, out, 32, SQLITE_TRANSIENT);
		sqlite3_bind_int64(up, 3, *seq);
		CHECK(sqlite3_step(up) == SQLITE_DONE);
		sqlite3_reset(up);
		memcpy(prev, out, 32);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	sqlite3_close(sql);
	sodium_bin2hex(hex, 65, prev, 32);
}

static void file_put(const char *suffix, const void *data, size_t len, mode_t mode)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", test_db_path, suffix);
	unlink(path);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(data, 1, len, f) == len);
	fclose(f);
	chmod(path, mode);
}

/* The head file as vigild writes it, signed with SEED's key (NULL: the unsigned, old format). */
static void anchor_write(int64_t seq, const char *hex, const unsigned char seed[32], const char *keep_sig_of)
{
	unsigned char pk[32], sk[64], sig[64];
	char line[400], msg[128], pk_hex[65], sig_hex[129];

	if (!seed) {
		snprintf(line, sizeof(line), "%lld %s\n", (long long)seq, hex);
	} else {
		crypto_sign_seed_keypair(pk, sk, seed);
		snprintf(msg, sizeof(msg), "vigil-audit-head-v1 %lld %s", (long long)seq, keep_sig_of ? keep_sig_of : hex);
		crypto_sign_detached(sig, NULL, (const unsigned char *)msg, strlen(msg), sk);
		sodium_bin2hex(pk_hex, sizeof(pk_hex), pk, 32);
		sodium_bin2hex(sig_hex, sizeof(sig_hex), sig, 64);
		snprintf(line, sizeof(line), "%lld %s ed25519 %s %s\n", (long long)seq, hex, pk_hex, sig_hex);
	}
	file_put("-audit-head", line, strlen(line), 0600);
}

static bool file_has(const char *path, const unsigned char *needle, size_t len)
{
	static unsigned char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;

	if (f)
		fclose(f);
	for (size_t i = 0; i + len <= n; i++)
		if (memcmp(buf + i, needle, len) == 0)
			return true;
	return false;
}

static void signed_head(void)
{
	unsigned char pinned[32], seed[32], attacker[32];
	struct mgmt_audit_report r;
	struct mgmt_db *db = NULL;
	char err[256], key_path[300], printed[65], hex[65], old_hex[65];
	struct stat sb;
	int64_t seq;

	snprintf(test_db_path, sizeof(test_db_path), "%s/signed.db", test_dir);
	snprintf(key_path, sizeof(key_path), "%s-audit.key", test_db_path);
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	if (!db)
		return;
	fill(db, 4);
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	CHECK(r.head_signed && r.head.state == MGMT_AUDIT_HEAD_SIGNED && r.head.seq == 4);
	CHECK_EQ_INT(strlen(r.public_key), 64);
	CHECK(strcmp(r.public_key, r.head.public_key) == 0);
	snprintf(printed, sizeof(printed), "%s", r.public_key); /* what `audit verify` printed: the auditor's pin */
	sodium_hex2bin(pinned, 32, printed, 64, NULL, NULL, NULL);
	mgmt_db_close(&db);

	/* The key: 0400, this uid's, and its seed in neither the database nor the head file. */
	CHECK(stat(key_path, &sb) == 0 && (sb.st_mode & 0777) == 0400);
	FILE *f = fopen(key_path, "r");
	CHECK(f && fread(seed, 1, 32, f) == 32);
	if (f)
		fclose(f);
	CHECK(!file_has(test_db_path, seed, 32));

	/* A restart: the same key, the pin holds, and the next append is signed by it. */
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	if (!db)
		return;
	CHECK_EQ_INT(mgmt_audit_append(db, &admin, "vigild.start", "/var/lib/vigil", NULL, NULL), 0);
	CHECK_EQ_INT(mgmt_audit_verify_key(db, pinned, &r), 0);
	CHECK(r.head_signed && r.head.seq == 5 && strcmp(r.public_key, printed) == 0);
	CHECK_EQ_INT(mgmt_audit_head_check(r.head.seq, r.head.hash, r.public_key, r.head.signature), 0);
	CHECK_EQ_INT(mgmt_audit_head_check(r.head.seq - 1, r.head.hash, r.public_key, r.head.signature), -EBADMSG);
	CHECK_EQ_INT(mgmt_audit_head_check(r.head.seq, "zz", r.public_key, r.head.signature), -EINVAL);
	snprintf(old_hex, sizeof(old_hex), "%s", r.head.hash);
	mgmt_db_close(&db);

	/* Entry 2 rewritten, the chain and head recomputed to match, the old signature kept. */
	CHECK_EQ_INT(raw_sql("DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'admin.jones' WHERE seq = 2"), 0);
	rechain(&seq, hex);
	CHECK_EQ_INT(seq, 5);
	CHECK(strcmp(hex, old_hex) != 0);
	anchor_write(seq, hex, seed, old_hex); /* the signature vigild made, over the old head */
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK_EQ_INT(r.first_bad_seq, 5);
	CHECK(strstr(r.reason, "signature does not hold") != NULL);
	CHECK(!r.head_signed);
	/* vigild starting on the rewritten files must not sign over them: the head stays put. */
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_audit_append(db, &admin, "vigild.start", "/var/lib/vigil", NULL, NULL), -EBADMSG);
	mgmt_db_close(&db);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK(strstr(r.reason, "entry 5 differs from the anchored head") != NULL || strstr(r.reason, "signature") != NULL);
	CHECK_EQ_INT(raw_sql("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 6"), 0); /* tidied up */

	/* ... or the head signed with a key of the attacker's own, the key file left alone. */
	randombytes_buf(attacker, sizeof(attacker));
	anchor_write(seq, hex, attacker, NULL);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK(strstr(r.reason, "not by this appliance's") != NULL);

	/* ... or the signature stripped, as an anchor from before signing: unsigned, and no pin takes it. */
	anchor_write(seq, hex, NULL, NULL);
	CHECK_EQ_INT(verify_path(&r), 0);
	CHECK(r.head.state == MGMT_AUDIT_HEAD_UNSIGNED && !r.head_signed);
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_audit_verify_key(db, pinned, &r), -EBADMSG);
	CHECK(strstr(r.reason, "not signed") != NULL);
	/* ... and the key is not new, so vigild does not sign over a stripped head either. */
	CHECK_EQ_INT(mgmt_audit_append(db, &admin, "vigild.start", "/var/lib/vigil", NULL, NULL), -EBADMSG);
	mgmt_db_close(&db);
	CHECK_EQ_INT(raw_sql("DELETE FROM audit WHERE seq = 6"), 0);

	/* ... or the key file replaced and the head re-signed with it: whole again, but not the pinned key. */
	file_put("-audit.key", attacker, sizeof(attacker), 0400);
	anchor_write(seq, hex, attacker, NULL);
	CHECK_EQ_INT(verify_path(&r), 0);
	CHECK(r.head_signed && strcmp(r.public_key, printed) != 0); /* what an auditor comparing keys sees */
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_audit_verify_key(db, pinned, &r), -EBADMSG);
	CHECK_EQ_INT(r.first_bad_seq, 5);
	CHECK(strstr(r.reason, "replaced") != NULL);
	mgmt_db_close(&db);

	/* The key file gone: a signed head cannot be checked, and says so. */
	unlink(key_path);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK(strstr(r.reason, "key is missing") != NULL);

	/* The head file gone from under a non-empty log. */
	snprintf(key_path, sizeof(key_path), "%s-audit-head", test_db_path);
	unlink(key_path);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK(strstr(r.reason, "missing") != NULL);
	snprintf(test_db_path, sizeof(test_db_path), "%s/vigil.db", test_dir);
}

/* A database from before signing: its old anchor reads as unsigned, and the next append signs. */
static void unsigned_upgrade(void)
{
	struct mgmt_audit_head head;
	struct mgmt_audit_report r;
	struct mgmt_db *db = NULL;
	char err[256], key_path[300];

	snprintf(test_db_path, sizeof(test_db_path), "%s/old.db", test_dir);
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	if (!db)
		return;
	fill(db, 2);
	CHECK_EQ_INT(mgmt_audit_head_get(db, &head), 0);
	mgmt_db_close(&db);
	/* The head file and no key, as an old vigild left them. */
	anchor_write(head.seq, head.hash, NULL, NULL);
	snprintf(key_path, sizeof(key_path), "%s-audit.key", test_db_path);
	unlink(key_path);
	CHECK_EQ_INT(verify_path(&r), 0);
	CHECK(r.head.state == MGMT_AUDIT_HEAD_UNSIGNED && !r.head_signed && r.entries == 2);
	CHECK_EQ_INT(r.public_key[0], '\0'); /* no key yet */
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	if (!db)
		return;
	CHECK_EQ_INT(mgmt_audit_append(db, &admin, "vigild.start", "/var/lib/vigil", NULL, NULL), 0);
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	CHECK(r.head.state == MGMT_AUDIT_HEAD_SIGNED && r.head_signed && r.head.seq == 3);
	mgmt_db_close(&db);
	snprintf(test_db_path, sizeof(test_db_path), "%s/vigil.db", test_dir);
}

int main(void)
{
	struct mgmt_audit_report r;
	struct mgmt_db *db = NULL;
	char err[256];
	int64_t seq = 0;

	test_db_fresh();
	signed_head();
	unsigned_upgrade();
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	if (!db)
		return 1;
	CHECK_EQ_INT(mgmt_db_schema_version(db), 6); /* every migration ran */
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0); /* empty log, no anchor yet */
	CHECK_EQ_INT(r.entries, 0);
	CHECK_EQ_INT(mgmt_audit_append(db, &admin, "", "x", NULL, NULL), -EINVAL);
	fill(db, 5);
	CHECK_EQ_INT(mgmt_audit_append(db, &admin, "config.set", "matcher.shards", NULL, &seq), 0);
	CHECK_EQ_INT(seq, 6);
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	CHECK_EQ_INT(r.entries, 6);
	mgmt_db_close(&db);
	CHECK(db == NULL);

	/* Kept across a restart; migrations do not run twice. */
	CHECK_EQ_INT(verify_path(&r), 0);
	CHECK_EQ_INT(r.entries, 6);

	/* The triggers refuse plain edits. */
	CHECK(raw_sql("UPDATE audit SET detail = 'x' WHERE seq = 2") < 0);
	CHECK(raw_sql("DELETE FROM audit WHERE seq = 2") < 0);
	CHECK_EQ_INT(verify_path(&r), 0);

	/* A tamperer drops the triggers and edits entry 3: found at 3. */
	CHECK_EQ_INT(raw_sql("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"), 0);
	CHECK_EQ_INT(raw_sql("UPDATE audit SET object = 'camera/other' WHERE seq = 3"), 0);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK_EQ_INT(r.first_bad_seq, 3);
	CHECK(strstr(r.reason, "altered") != NULL);
	CHECK_EQ_INT(raw_sql("UPDATE audit SET object = 'camera/cam3' WHERE seq = 3"), 0);
	CHECK_EQ_INT(verify_path(&r), 0); /* put back exactly: intact again */

	/* Editing the time of entry 2: found at 2. */
	CHECK_EQ_INT(raw_sql("UPDATE audit SET ts_ns = ts_ns + 1 WHERE seq = 2"), 0);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK_EQ_INT(r.first_bad_seq, 2);
	CHECK_EQ_INT(raw_sql("UPDATE audit SET ts_ns = ts_ns - 1 WHERE seq = 2"), 0);

	/* Reordering: entries 4 and 5 swap contents. */
	CHECK_EQ_INT(raw_sql("UPDATE audit SET seq = -4 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 5;"
			     "UPDATE audit SET seq = 5 WHERE seq = -4;"),
		     0);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK_EQ_INT(r.first_bad_seq, 4);
	CHECK_EQ_INT(raw_sql("UPDATE audit SET seq = -4 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 5;"
			     "UPDATE audit SET seq = 5 WHERE seq = -4;"),
		     0);
	CHECK_EQ_INT(verify_path(&r), 0);

	/* Deleting entry 2 from the middle: found at 2. */
	CHECK_EQ_INT(raw_sql("CREATE TABLE saved AS SELECT * FROM audit WHERE seq = 2; DELETE FROM audit WHERE seq = 2"), 0);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK_EQ_INT(r.first_bad_seq, 2);
	CHECK(strstr(r.reason, "missing") != NULL);
	CHECK_EQ_INT(raw_sql("INSERT INTO audit SELECT * FROM saved; DROP TABLE saved"), 0);
	CHECK_EQ_INT(verify_path(&r), 0);

	/* Cutting the last two entries off the end: the anchor finds it. */
	CHECK_EQ_INT(raw_sql("DELETE FROM audit WHERE seq >= 5"), 0);
	CHECK_EQ_INT(verify_path(&r), -EBADMSG);
	CHECK_EQ_INT(r.first_bad_seq, 5);
	CHECK(strstr(r.reason, "cut off") != NULL);

	/* A database from a newer vigild: refused with a reason, and left as it was. */
	CHECK_EQ_INT(raw_sql("PRAGMA user_version = 99"), 0);
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), -EPROTO);
	CHECK(strstr(err, "newer") != NULL);
	CHECK(db == NULL);

	/* Not a database at all. */
	FILE *f = fopen(test_db_path, "w");
	fputs("this is not sqlite, but it is long enough to have a header page................", f);
	fclose(f);
	CHECK(mgmt_db_open(&db, test_db_path, err, sizeof(err)) < 0);
	CHECK(strchr(err, '\n') == NULL && err[0] != '\0');

	test_db_cleanup();
	return vg_test_exit();
}
