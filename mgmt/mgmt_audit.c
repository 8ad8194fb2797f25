/*
 * The hash-chained audit log (mgmt.h, invariant 4) with its head anchor.
 *
 * Chain: hash(n) = BLAKE2b-256(hash(n-1) || seq || ts_ns || actor || uid || action || object ||
 * detail), each field length-prefixed (8 bytes little-endian) so that no two different entries
 * encode alike; hash(0) is 32 zero bytes. SQLite triggers refuse UPDATE and DELETE on the audit
 * table, which stops mistakes; verify is what catches a deliberate edit made around them.
 *
 * Head: after every commit that appended, the last entry's seq and hash go to the anchor file,
 * signed with the audit key (Ed25519 from a 32-byte seed in "<db>-audit.key", 0400, made at the
 * first append). Someone who rewrites the database and recomputes every hash and the anchor still
 * lacks the key; someone who also replaces the key is found against a public key an auditor
 * pinned. An anchor from before signing ("<seq> <hash>") still reads, as unsigned.
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
#include "vg_keyfile.h"
#include "vg_log.h"

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

void mgmt_audit_entry_hash(const unsigned char prev[MGMT_AUDIT_HASH_BYTES], const struct mgmt_audit_entry *e,
			   unsigned char out[MGMT_AUDIT_HASH_BYTES])
{
	entry_hash(prev, e->seq, e->ts_ns, e->actor, e->uid, e->action, e->object, e->detail, out);
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

/* ---- the signed head ----------------------------------------------------------------------- */

#define HEAD_ALG "ed25519"

static void head_message(int64_t seq, const char *hash_hex, char *out, size_t len)
{
	snprintf(out, len, "vigil-audit-head-v1 %" PRId64 " %s", seq, hash_hex);
}

/* LEN lower-case hex digits and nothing else: what the anchor and an export hold. */
static bool is_hex(const char *s, size_t len)
{
	return strlen(s) == len && strspn(s, "0123456789abcdef") == len;
}

/* The signing key, read once per handle; CREATE makes it at the first append (vg_keyfile.h). */
static int sign_key_load(struct mgmt_db *db)
{
	unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char *sk;
	int rc;

	if (db->sign_sk)
		return 0;
	db->key_fresh = access(db->key_path, F_OK) < 0 && errno == ENOENT;
	rc = vg_key_file_read(db->key_path, seed, sizeof(seed), true);
	if (rc < 0)
		return rc;
	sk = sodium_malloc(crypto_sign_SECRETKEYBYTES); /* guarded, and kept out of core dumps */
	if (sk)
		crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	if (!sk)
		return -ENOMEM;
	db->sign_sk = sk;
	return 0;
}

void mgmt_audit_key_forget(struct mgmt_db *db)
{
	sodium_free(db->sign_sk); /* zeroes it */
	db->sign_sk = NULL;
}

/*
 * The public key as the key file holds it now (not the handle's copy: verify must see a key that
 * was replaced under a running vigild). -ENOENT before the first append.
 */
static int public_key_read(struct mgmt_db *db, unsigned char pk[MGMT_AUDIT_KEY_BYTES])
{
	unsigned char seed[crypto_sign_SEEDBYTES], sk[crypto_sign_SECRETKEYBYTES];
	int rc = vg_key_file_read(db->key_path, seed, sizeof(seed), false);

	if (rc < 0)
		return rc;
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	return 0;
}

/* The stored hash of entry SEQ equals HEX (the anchored head's), or -EBADMSG. */
static int stored_hash_is(struct mgmt_db *db, int64_t seq, const char *hex)
{
	char have[2 * MGMT_AUDIT_HASH_BYTES + 1] = "";
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db->sql, "SELECT hash FROM audit WHERE seq = ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == MGMT_AUDIT_HASH_BYTES)
		sodium_bin2hex(have, sizeof(have), sqlite3_column_blob(st, 0), MGMT_AUDIT_HASH_BYTES);
	sqlite3_finalize(st);
	return strcmp(have, hex) == 0 ? 0 : -EBADMSG;
}

/*
 * The head about to be replaced must be one this key signed, over what the database still holds;
 * otherwise a database rewritten while vigild was stopped would be signed over by vigild itself at
 * its next append. An unsigned or missing head is taken only when the key is new (the first
 * signed append of a database from before signing). Cost: one row, one signature check.
 */
static int prior_head_check(struct mgmt_db *db, const char *pk_hex, const char **why)
{
	struct mgmt_audit_head old;

	*why = "its anchor is unreadable";
	if (mgmt_audit_head_get(db, &old) < 0)
		return -EBADMSG;
	if (old.state == MGMT_AUDIT_HEAD_NONE) {
		*why = "its anchor is missing";
		return db->key_fresh ? 0 : -EBADMSG;
	}
	*why = "the entry it names was rewritten";
	if (stored_hash_is(db, old.seq, old.hash) < 0)
		return -EBADMSG;
	if (old.state == MGMT_AUDIT_HEAD_UNSIGNED) {
		*why = "its signature was stripped";
		return db->key_fresh ? 0 : -EBADMSG;
	}
	*why = "it was signed by another key";
	if (strcmp(old.public_key, pk_hex) != 0)
		return -EBADMSG;
	*why = "its signature does not hold";
	return mgmt_audit_head_check(old.seq, old.hash, pk_hex, old.signature);
}

int mgmt_audit_anchor_update(struct mgmt_db *db)
{
	const char *why;
	unsigned char hash[MGMT_AUDIT_HASH_BYTES], pk[MGMT_AUDIT_KEY_BYTES], sig[MGMT_AUDIT_SIG_BYTES];
	char hex[2 * MGMT_AUDIT_HASH_BYTES + 1], pk_hex[2 * MGMT_AUDIT_KEY_BYTES + 1];
	char sig_hex[2 * MGMT_AUDIT_SIG_BYTES + 1], msg[sizeof(((struct mgmt_audit_head *)0)->message)], *tmp;
	int64_t seq;
	int fd, rc;

	rc = chain_head(db, &seq, hash);
	if (rc < 0)
		return rc;
	rc = sign_key_load(db);
	if (rc < 0) {
		/* The path only: the key itself is never logged. */
		VG_LOG(MGMT, ERR, "audit key %s: %s; the head is not moved", db->key_path, vg_strerror(rc));
		return rc;
	}
	crypto_sign_ed25519_sk_to_pk(pk, db->sign_sk);
	sodium_bin2hex(pk_hex, sizeof(pk_hex), pk, sizeof(pk));
	if (prior_head_check(db, pk_hex, &why) < 0) {
		/* Left as it is, for verify to report; never signed over. */
		VG_LOG(MGMT, ERR, "audit head not moved to entry %" PRId64 ": the head before it is not to be trusted (%s)",
		       seq, why);
		return -EBADMSG;
	}
	db->key_fresh = false;
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	head_message(seq, hex, msg, sizeof(msg));
	crypto_sign_detached(sig, NULL, (const unsigned char *)msg, strlen(msg), db->sign_sk);
	sodium_bin2hex(sig_hex, sizeof(sig_hex), sig, sizeof(sig));
	if (asprintf(&tmp, "%s.tmp", db->anchor_path) < 0)
		return -ENOMEM;
	/* Write, sync, rename: the anchor is always a whole old or a whole new head. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out_free_tmp;
	}
	if (dprintf(fd, "%" PRId64 " %s " HEAD_ALG " %s %s\n", seq, hex, pk_hex, sig_hex) < 0 || fsync(fd) < 0)
		rc = -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, db->anchor_path) < 0)
		rc = -errno;
out_free_tmp:
	free(tmp);
	return rc;
}

int mgmt_audit_head_get(struct mgmt_db *db, struct mgmt_audit_head *h)
{
	char line[512], alg[16] = "";
	bool ok;
	FILE *f;
	int n;

	memset(h, 0, sizeof(*h));
	f = fopen(db->anchor_path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	n = ok ? sscanf(line, "%" SCNd64 " %64s %15s %64s %128s", &h->seq, h->hash, alg, h->public_key,
			h->signature)
	       : 0;
	if (n == 2 && h->seq > 0 && is_hex(h->hash, 2 * MGMT_AUDIT_HASH_BYTES)) {
		h->state = MGMT_AUDIT_HEAD_UNSIGNED;
	} else if (n == 5 && h->seq > 0 && is_hex(h->hash, 2 * MGMT_AUDIT_HASH_BYTES) && strcmp(alg, HEAD_ALG) == 0 &&
		   is_hex(h->public_key, 2 * MGMT_AUDIT_KEY_BYTES) && is_hex(h->signature, 2 * MGMT_AUDIT_SIG_BYTES)) {
		h->state = MGMT_AUDIT_HEAD_SIGNED;
	} else {
		memset(h, 0, sizeof(*h));
		return -EBADMSG;
	}
	head_message(h->seq, h->hash, h->message, sizeof(h->message));
	return 0;
}

int mgmt_audit_head_check(int64_t seq, const char *hash_hex, const char *public_key_hex, const char *signature_hex)
{
	unsigned char pk[MGMT_AUDIT_KEY_BYTES], sig[MGMT_AUDIT_SIG_BYTES];
	char msg[sizeof(((struct mgmt_audit_head *)0)->message)];

	if (seq < 1 || !hash_hex || !public_key_hex || !signature_hex || !is_hex(hash_hex, 2 * MGMT_AUDIT_HASH_BYTES) ||
	    !is_hex(public_key_hex, 2 * MGMT_AUDIT_KEY_BYTES) || !is_hex(signature_hex, 2 * MGMT_AUDIT_SIG_BYTES))
		return -EINVAL;
	sodium_hex2bin(pk, sizeof(pk), public_key_hex, strlen(public_key_hex), NULL, NULL, NULL);
	sodium_hex2bin(sig, sizeof(sig), signature_hex, strlen(signature_hex), NULL, NULL, NULL);
	head_message(seq, hash_hex, msg, sizeof(msg));
	return crypto_sign_verify_detached(sig, (const unsigned char *)msg, strlen(msg), pk) == 0 ? 0 : -EBADMSG;
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

/* The chain, entry by entry, and the anchored head's hash at its seq. */
static int verify_chain(struct mgmt_db *db, struct mgmt_audit_report *r)
{
	unsigned char prev[MGMT_AUDIT_HASH_BYTES] = { 0 }, want[MGMT_AUDIT_HASH_BYTES];
	int64_t expect_seq = 1, anchor_seq = r->head.seq;
	bool anchor_seen = false;
	sqlite3_stmt *st;
	int rc = 0, step;

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
			if (strcmp(hex, r->head.hash) != 0) {
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
	if (rc == 0 && r->entries > 0 && r->head.state == MGMT_AUDIT_HEAD_NONE)
		rc = bad(r, r->entries, "the audit head anchor %s is missing", db->anchor_path);
	return rc;
}

/* The head's signature, under this appliance's key, and that key against a pinned one. */
static int verify_head(struct mgmt_audit_report *r, const unsigned char *expected, bool have_key)
{
	const struct mgmt_audit_head *h = &r->head;
	int64_t at = h->seq ? h->seq : 1;

	if (expected) {
		char want[2 * MGMT_AUDIT_KEY_BYTES + 1];

		sodium_bin2hex(want, sizeof(want), expected, MGMT_AUDIT_KEY_BYTES);
		if (!have_key || strcmp(want, r->public_key) != 0)
			return bad(r, at, "the appliance's audit key is %.16s..., not the pinned %.16s...: it was replaced",
				   have_key ? r->public_key : "(none)", want);
	}
	switch (h->state) {
	case MGMT_AUDIT_HEAD_NONE:
		return expected ? bad(r, at, "the audit log is empty: there is no signed head") : 0;
	case MGMT_AUDIT_HEAD_UNSIGNED:
		/* An anchor from before signing: readable, reported, and never good enough for a pin. */
		return expected ? bad(r, at, "the head (entry %" PRId64 ") is not signed", h->seq) : 0;
	case MGMT_AUDIT_HEAD_SIGNED:
		break;
	}
	if (!have_key)
		return bad(r, at, "the head is signed but the audit key is missing: it cannot be checked");
	if (strcmp(h->public_key, r->public_key) != 0)
		return bad(r, at, "the head is signed by key %.16s..., not by this appliance's %.16s...", h->public_key,
			   r->public_key);
	if (mgmt_audit_head_check(h->seq, h->hash, r->public_key, h->signature) < 0)
		return bad(r, at, "the head's signature does not hold: the log and its head were rewritten");
	r->head_signed = true;
	return 0;
}

int mgmt_audit_verify_key(struct mgmt_db *db, const unsigned char *expected, struct mgmt_audit_report *r)
{
	unsigned char pk[MGMT_AUDIT_KEY_BYTES];
	bool have_key;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = mgmt_audit_head_get(db, &r->head);
	if (rc == -EBADMSG)
		return bad(r, 1, "the audit head anchor %s is unreadable", db->anchor_path);
	if (rc < 0)
		return rc;
	rc = public_key_read(db, pk);
	if (rc < 0 && rc != -ENOENT)
		return bad(r, r->head.seq ? r->head.seq : 1, "the audit key %s: %s", db->key_path, vg_strerror(rc));
	have_key = rc == 0;
	if (have_key)
		sodium_bin2hex(r->public_key, sizeof(r->public_key), pk, sizeof(pk));
	rc = verify_chain(db, r);
	return rc < 0 ? rc : verify_head(r, expected, have_key);
}

int mgmt_audit_verify(struct mgmt_db *db, struct mgmt_audit_report *r)
{
	return mgmt_audit_verify_key(db, NULL, r);
}

static void hex_column(sqlite3_stmt *st, int col, char hex[2 * MGMT_AUDIT_HASH_BYTES + 1])
{
	/* A hash of the wrong length is given as it is, for the offline check to find. */
	int n = sqlite3_column_bytes(st, col);
	const unsigned char *b = sqlite3_column_blob(st, col);

	if (n > MGMT_AUDIT_HASH_BYTES)
		n = MGMT_AUDIT_HASH_BYTES;
	sodium_bin2hex(hex, 2 * MGMT_AUDIT_HASH_BYTES + 1, b ? b : (const unsigned char *)"", b ? (size_t)n : 0);
}

int mgmt_audit_list(struct mgmt_db *db, int64_t since, size_t max,
		    bool (*fn)(void *arg, const struct mgmt_audit_entry *e), void *arg)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT seq, ts_ns, actor, uid, action, object, detail, prev_hash, hash FROM audit"
			       " WHERE seq > ? ORDER BY seq LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mgmt_audit_entry e = {
			.seq = sqlite3_column_int64(st, 0),
			.ts_ns = sqlite3_column_int64(st, 1),
			.actor = (const char *)sqlite3_column_text(st, 2),
			.uid = sqlite3_column_int64(st, 3),
			.action = (const char *)sqlite3_column_text(st, 4),
			.object = (const char *)sqlite3_column_text(st, 5),
			.detail = (const char *)sqlite3_column_text(st, 6),
		};

		e.text_bytes = (size_t)sqlite3_column_bytes(st, 2) + (size_t)sqlite3_column_bytes(st, 5) +
			       (size_t)sqlite3_column_bytes(st, 6);
		hex_column(st, 7, e.prev_hash);
		hex_column(st, 8, e.hash);
		if (!fn(arg, &e)) {
			rc = 1;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

int64_t mgmt_audit_count(struct mgmt_db *db)
{
	sqlite3_stmt *st;
	int64_t n = -EIO;

	if (sqlite3_prepare_v2(db->sql, "SELECT COALESCE(MAX(seq), 0) FROM audit", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}
