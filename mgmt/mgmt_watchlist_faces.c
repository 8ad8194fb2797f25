/*
 * Watchlists' enrolment crops (mgmt.h): sealed at registration with a per-watchlist key that the
 * appliance key wraps, read back one subject at a time for a reviewer by the seal of the very
 * watchlist an alert matched, kept after the watchlist ended for as long as alerts need them,
 * then deleted (mgmt_watchlist_faces_release).
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_file.h"
#include "vg_keyfile.h"
#include "vg_log.h"

/* AD of one crop record: which watchlist and subject it belongs to, so records cannot be swapped. */
static size_t face_ad(char *ad, size_t len, const char *id, const char *subject)
{
	return (size_t)snprintf(ad, len, "vigil-face:%s:%s", id, subject);
}

/*
 * Encrypt the plain crops file at FD into PATH: "VGFACES\0", then per subject { u16 subject
 * length, subject, u32 sealed length, nonce[24], sealed crop }. The fresh key, sealed by the
 * appliance key, goes to SEALED.
 */
int mgmt_faces_seal(int fd, const char *path, const char *id, const char *key_path, uint8_t sealed[SEALED_KEY_BYTES],
		      uint32_t *n_faces, char *err, size_t errlen)
{
	uint8_t key[FACES_KEY_BYTES], akey[32], *in = NULL, *out = NULL;
	size_t len = 0, w = 8, r = 0, cap;
	int rc;

	rc = mgmt_read_fd(fd, WL_FILE_MAX, &in, &len);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "the enrolment crops file: %s", vg_strerror(rc));
	cap = 8 + len + (len / 7 + 1) * (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES + 4);
	out = malloc(cap);
	if (!out) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_free;
	}
	rc = vg_key_file_read(key_path, akey, sizeof(akey), true);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "appliance key %s: %s", key_path, vg_strerror(rc));
		goto out_free;
	}
	crypto_aead_xchacha20poly1305_ietf_keygen(key);
	memcpy(out, FACES_MAGIC, 8);
	*n_faces = 0;
	while (r < len) {
		char subject[WL_SUBJECT_BYTES + 1], ad[128];
		uint32_t slen, jlen;

		if (len - r < 2 || (slen = (uint32_t)in[r] | (uint32_t)in[r + 1] << 8) == 0 || slen > WL_SUBJECT_BYTES ||
		    len - r - 2 < slen + 4) {
			rc = vg_errf(err, errlen, -EINVAL, "the enrolment crops file is malformed at byte %zu", r);
			goto out_free;
		}
		memcpy(subject, in + r + 2, slen);
		subject[slen] = '\0';
		jlen = mgmt_le32(in + r + 2 + slen);
		if (jlen == 0 || jlen > MGMT_WATCHLIST_FACE_MAX || len - r - 6 - slen < jlen ||
		    w + 6 + slen + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + jlen + crypto_aead_xchacha20poly1305_ietf_ABYTES > cap) {
			rc = vg_errf(err, errlen, -EINVAL, "the enrolment crops file is malformed at byte %zu", r);
			goto out_free;
		}
		uint32_t sealed_len = jlen + crypto_aead_xchacha20poly1305_ietf_ABYTES;
		memcpy(out + w, in + r, 2 + slen);
		w += 2 + slen;
		for (int i = 0; i < 4; i++)
			out[w + i] = (uint8_t)(sealed_len >> (8 * i));
		w += 4;
		uint8_t *nonce = out + w;
		randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
		w += crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
		size_t adlen = face_ad(ad, sizeof(ad), id, subject);
		crypto_aead_xchacha20poly1305_ietf_encrypt(out + w, NULL, in + r + 6 + slen, jlen, (const uint8_t *)ad, adlen,
							   NULL, nonce, key);
		w += sealed_len;
		r += 6 + slen + jlen;
		(*n_faces)++;
	}
	rc = mgmt_write_file(path, out, w);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "%s: %s", path, vg_strerror(rc));
		goto out_free;
	}
	randombytes_buf(sealed, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(sealed + crypto_secretbox_NONCEBYTES, key, sizeof(key), sealed, akey);
out_free:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(akey, sizeof(akey));
	if (in)
		sodium_memzero(in, len);
	free(in);
	free(out); /* ciphertext only */
	return rc;
}

/*
 * How many alerts still need watchlist SEAL's enrolment crops beside their evidence: those
 * unreviewed, and those confirmed whose evidence is still retained (invariant 3: the reviewer,
 * and later the court, compare with the very crops the watchlist matched). -EIO on error.
 */
int64_t mgmt_alerts_needing_faces(struct mgmt_db *db, const char *seal)
{
	struct mgmt_retention ret;
	sqlite3_stmt *st;
	int64_t n = -EIO;

	if (mgmt_retention_get(db, &ret) < 0)
		return -EIO;
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT COUNT(*) FROM alerts WHERE watchlist_seal = ? AND"
			       " (outcome = ? OR (outcome = ? AND reviewed_ns > ?))",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, seal, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, MGMT_ALERT_UNREVIEWED);
	sqlite3_bind_int(st, 3, MGMT_ALERT_CONFIRMED);
	sqlite3_bind_int64(st, 4, (int64_t)vg_clock_realtime_ns() - (int64_t)ret.confirmed_s * (int64_t)VG_NS_PER_SEC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

int mgmt_watchlist_face_get(struct mgmt_db *db, const char *id, const char *seal, const char *subject,
			    const char *key_path, uint8_t *jpeg, size_t cap, size_t *len)
{
	uint8_t sealed[SEALED_KEY_BYTES], key[FACES_KEY_BYTES], akey[32], *buf = NULL;
	char faces_path[700], ad[128];
	struct mgmt_watchlist w;
	sqlite3_stmt *st;
	size_t flen = 0, r = 8, slen_want = strlen(subject);
	int fd, rc;

	rc = mgmt_watchlist_get(db, id, &w);
	if (rc < 0)
		return rc;
	/* Only the very watchlist that matched: the record with this seal, its crops kept as long as
	 * alerts need them even after the watchlist ended (faces_key cleared when they go). */
	if (!seal || strcmp(seal, w.sha256) != 0)
		return -ESTALE;
	if (!w.has_faces)
		return -ENOENT;
	if (sqlite3_prepare_v2(db->sql, "SELECT faces_key FROM watchlists WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == SEALED_KEY_BYTES ? 0
	     : w.state != MGMT_WATCHLIST_LIVE						       ? -ESTALE
												       : -EBADMSG;
	if (rc == 0)
		memcpy(sealed, sqlite3_column_blob(st, 0), SEALED_KEY_BYTES);
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	rc = vg_key_file_read(key_path, akey, sizeof(akey), false);
	if (rc < 0)
		return rc;
	rc = crypto_secretbox_open_easy(key, sealed + crypto_secretbox_NONCEBYTES, SEALED_KEY_BYTES - crypto_secretbox_NONCEBYTES,
					sealed, akey) == 0 ? 0 : -EKEYREJECTED;
	sodium_memzero(akey, sizeof(akey));
	if (rc < 0)
		return rc;
	snprintf(faces_path, sizeof(faces_path), "%.*s.faces", (int)strlen(w.path) - 4, w.path);
	fd = open(faces_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		goto out_key;
	}
	rc = mgmt_read_fd(fd, (uint64_t)1 << 32, &buf, &flen);
	close(fd);
	if (rc < 0)
		goto out_key;
	rc = flen >= 8 && memcmp(buf, FACES_MAGIC, 8) == 0 ? -ENOENT : -EBADMSG;
	/* Cost: one pass over the record headers, one decryption (the subject's). */
	while (rc == -ENOENT && flen - r >= 2) {
		size_t slen = (size_t)buf[r] | (size_t)buf[r + 1] << 8, clen;

		if (flen - r - 2 < slen + 4) {
			rc = -EBADMSG;
			break;
		}
		clen = mgmt_le32(buf + r + 2 + slen);
		if (clen < crypto_aead_xchacha20poly1305_ietf_ABYTES ||
		    flen - r - 6 - slen < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + clen) {
			rc = -EBADMSG;
			break;
		}
		if (slen == slen_want && memcmp(buf + r + 2, subject, slen) == 0) {
			const uint8_t *nonce = buf + r + 6 + slen;
			unsigned long long plen;
			size_t adlen = face_ad(ad, sizeof(ad), id, subject);

			*len = clen - crypto_aead_xchacha20poly1305_ietf_ABYTES;
			if (*len > cap) {
				rc = -ENOBUFS;
				break;
			}
			rc = crypto_aead_xchacha20poly1305_ietf_decrypt(jpeg, &plen, NULL,
									nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
									clen, (const uint8_t *)ad, adlen, nonce, key) == 0
				     ? 0
				     : -EBADMSG;
			break;
		}
		r += 6 + slen + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + clen;
	}
	free(buf); /* ciphertext only */
out_key:
	sodium_memzero(key, sizeof(key));
	return rc;
}

int mgmt_watchlist_faces_release(struct mgmt_db *db)
{
	static const struct mgmt_actor vigild = { "vigild", 0, 0 };
	char ids[64][16], object[48];
	sqlite3_stmt *st;
	int n = 0, released = 0;

	/* Cost: at most 64 ended watchlists still holding crops a call; the daemon calls it often. */
	if (sqlite3_prepare_v2(db->sql, "SELECT id FROM watchlists WHERE state != 0 AND faces_key IS NOT NULL LIMIT 64",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while (n < 64 && sqlite3_step(st) == SQLITE_ROW)
		snprintf(ids[n++], sizeof(ids[0]), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	for (int i = 0; i < n; i++) {
		struct mgmt_watchlist w;
		char faces_path[700];

		if (mgmt_watchlist_get(db, ids[i], &w) < 0 || mgmt_alerts_needing_faces(db, w.sha256) != 0)
			continue;
		snprintf(faces_path, sizeof(faces_path), "%.*s.faces", (int)strlen(w.path) - 4, w.path);
		if (vg_file_scrub(faces_path) < 0)
			continue; /* retried at the next call */
		if (sqlite3_prepare_v2(db->sql, "UPDATE watchlists SET faces_key = NULL WHERE id = ?", -1, &st, NULL) !=
		    SQLITE_OK)
			return -EIO;
		sqlite3_bind_text(st, 1, w.id, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
		snprintf(object, sizeof(object), "watchlist/%s", w.id);
		mgmt_audit_append(db, &vigild, "watchlist.crops.deleted", object,
				  "{\"why\":\"no alert needs the enrolment crops any more\"}", NULL);
		released++;
	}
	return released;
}
