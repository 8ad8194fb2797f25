/*
 * Cameras (mgmt.h): the RTSP sources vigild watches, and camera.add|list|remove|probe on the
 * control socket. A URL's credentials are split off when a camera is added and sealed with
 * XChaCha20-Poly1305 under a key kept in a file beside the database (never inside it), with the
 * camera's id as associated data so a sealed blob cannot be moved to another camera. The URL is
 * split once, by vg_url_split() (RFC 3986, percent-decoded, credentials in the query refused);
 * everything that is stored in clear, shown, logged or audited is its public URL, never the
 * URL as given: no reason here quotes it.
 */
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgmt_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_log.h"
#include "vg_url.h"

#define CRED_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define CRED_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define CRED_FIELD MGMT_CREDENTIAL_MAX /* user and password, each with its NUL: dp_rtsp's sizes */
_Static_assert(MGMT_CREDENTIAL_MAX == VG_URL_CRED_MAX, "the sealed credentials are what vg_url splits off");

/* ---- URLs ----------------------------------------------------------------------------------- */

/* One parser for every camera URL (vg_url.h): what is sealed is what dp_rtsp will send. */
int mgmt_url_redact(const char *url, char *out, size_t len)
{
	struct vg_url u;
	char why[200];
	int rc = vg_url_split(url, "rtsp", "554", &u, why, sizeof(why));

	if (rc == 0 && snprintf(out, len, "%s", u.url) >= (int)len)
		rc = -ENOSPC;
	vg_url_scrub(&u);
	return rc == -E2BIG ? -EINVAL : rc;
}

/* ---- the credentials key -------------------------------------------------------------------- */

static int key_path(struct mgmt_db *db, char *path, size_t len)
{
	const char *file = sqlite3_db_filename(db->sql, "main");
	int n;

	if (!file || !*file)
		return -ENOENT; /* an in-memory database has nowhere to keep a key beside it */
	n = snprintf(path, len, "%s-credentials.key", file);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Read the key; with CREATE, make it first if there is none (the first camera with credentials). */
static int key_load(struct mgmt_db *db, bool create, unsigned char key[CRED_KEY_BYTES])
{
	char path[600];
	struct stat sb;
	int fd, rc = key_path(db, path, sizeof(path));

	if (rc < 0)
		return rc;
	if (create) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			crypto_aead_xchacha20poly1305_ietf_keygen(key);
			rc = write(fd, key, CRED_KEY_BYTES) == CRED_KEY_BYTES && fsync(fd) == 0 ? 0 : -EIO;
			close(fd);
			if (rc < 0) {
				unlink(path);
				sodium_memzero(key, CRED_KEY_BYTES);
			}
			return rc;
		}
		if (errno != EEXIST)
			return -errno;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	/* A key others can read protects nothing: refuse it rather than use it. */
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size != CRED_KEY_BYTES)
		rc = -EBADMSG;
	else if (sb.st_mode & 077 || sb.st_uid != geteuid())
		rc = -EPERM;
	else if (read(fd, key, CRED_KEY_BYTES) != CRED_KEY_BYTES)
		rc = -EIO;
	close(fd);
	if (rc < 0)
		sodium_memzero(key, CRED_KEY_BYTES);
	return rc;
}

/* ---- cameras in the database ----------------------------------------------------------------- */

bool mgmt_camera_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n >= sizeof(((struct mgmt_camera *)0)->id))
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int mgmt_camera_add(struct mgmt_db *db, const struct mgmt_actor *who, const struct mgmt_camera_add *req, char *err,
		    size_t errlen)
{
	struct vg_url u;
	char why[200], object[64];
	/* nonce || sealed "user\0password" || tag */
	unsigned char key[CRED_KEY_BYTES];
	unsigned char blob[CRED_NONCE_BYTES + 2 * CRED_FIELD + crypto_aead_xchacha20poly1305_ietf_ABYTES];
	unsigned long long blob_len = 0;
	int64_t fps = req->fps ? req->fps : MGMT_CAMERA_FPS_DEFAULT;
	const char *location = req->location ? req->location : "";
	bool creds;
	sqlite3_stmt *st;
	json_t *detail;
	char *detail_text;
	int rc;

	if (!(who->roles & MGMT_ROLE_ADMIN))
		return vg_errf(err, errlen, -EPERM, "%s may not add cameras: that needs the admin role", who->name);
	if (!req->id || !mgmt_camera_id_valid(req->id))
		return vg_errf(err, errlen, -EINVAL, "a camera id is 1 to 31 letters, digits, '.', '_' or '-'");
	if (!req->url)
		return vg_errf(err, errlen, -EINVAL, "a camera needs an rtsp:// URL");
	/* The reasons below never quote the URL: it may hold the credentials. */
	rc = vg_url_split(req->url, "rtsp", "554", &u, why, sizeof(why));
	if (rc < 0)
		return vg_errf(err, errlen, rc == -E2BIG ? -EINVAL : rc, "%s", why);
	if (fps < 1 || fps > 60) {
		vg_url_scrub(&u);
		return vg_errf(err, errlen, -ERANGE, "analysis fps must be 1 to 60, not %" PRId64, fps);
	}
	if (strlen(location) >= sizeof(((struct mgmt_camera *)0)->location)) {
		vg_url_scrub(&u);
		return vg_errf(err, errlen, -ERANGE, "the location is longer than 255 bytes");
	}
	if (*location && (rc = mgmt_text_check("the location", location, 255, false, err, errlen)) < 0) {
		vg_url_scrub(&u);
		return rc;
	}
	creds = u.user[0] || u.password[0];
	if (creds) {
		size_t ul = strlen(u.user), pl = strlen(u.password);
		unsigned char plain[2 * CRED_FIELD];

		rc = key_load(db, true, key);
		if (rc < 0) {
			vg_url_scrub(&u);
			return vg_errf(err, errlen, rc, "cannot open the credentials key beside the database: %s",
				       vg_strerror(rc));
		}
		memcpy(plain, u.user, ul + 1);
		memcpy(plain + ul + 1, u.password, pl + 1);
		randombytes_buf(blob, CRED_NONCE_BYTES);
		crypto_aead_xchacha20poly1305_ietf_encrypt(blob + CRED_NONCE_BYTES, &blob_len, plain, ul + pl + 2,
							   (const unsigned char *)req->id, strlen(req->id), NULL, blob,
							   key);
		blob_len += CRED_NONCE_BYTES;
		sodium_memzero(plain, sizeof(plain));
		sodium_memzero(key, sizeof(key));
	}
	/* From here on only the public URL is left. */
	sodium_memzero(u.user, sizeof(u.user));
	sodium_memzero(u.password, sizeof(u.password));
	const char *public = u.url;

	detail = json_pack("{s:s, s:s, s:I, s:b}", "url", public, "location", location, "fps", (json_int_t)fps,
			   "credentials", creds);
	detail_text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	json_decref(detail);
	if (!detail_text)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	rc = mgmt_tx_begin(db);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "database error adding camera '%s'", req->id);
		goto out_free_detail;
	}
	if (sqlite3_prepare_v2(db->sql,
			       "INSERT INTO cameras (id, url, location, fps, credentials, added_by, added_uid, added_ns)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = -EIO;
		goto out_rollback;
	}
	sqlite3_bind_text(st, 1, req->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, public, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, location, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, fps);
	if (creds)
		sqlite3_bind_blob(st, 5, blob, (int)blob_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_text(st, 6, who->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, who->uid);
	sqlite3_bind_int64(st, 8, (int64_t)vg_clock_realtime_ns());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT) {
		mgmt_tx_rollback(db);
		rc = vg_errf(err, errlen, -EEXIST, "camera '%s' exists already (remove it first)", req->id);
		goto out_free_detail;
	}
	if (rc != SQLITE_DONE) {
		rc = -EIO;
		goto out_rollback;
	}
	snprintf(object, sizeof(object), "camera/%s", req->id);
	rc = mgmt_audit_append_tx(db, who, "camera.add", object, detail_text, NULL);
	if (rc < 0)
		goto out_rollback;
	rc = mgmt_tx_commit(db);
	if (rc == 0)
		rc = mgmt_audit_anchor_update(db);
	if (rc < 0)
		vg_errf(err, errlen, rc, "database error adding camera '%s'", req->id);
	goto out_free_detail;

out_rollback:
	mgmt_tx_rollback(db);
	vg_errf(err, errlen, rc, "database error adding camera '%s'", req->id);
out_free_detail:
	free(detail_text);
	sodium_memzero(blob, sizeof(blob));
	return rc;
}

int mgmt_camera_remove(struct mgmt_db *db, const struct mgmt_actor *who, const char *id, char *err, size_t errlen)
{
	struct mgmt_camera cam;
	char object[64];
	sqlite3_stmt *st;
	int rc;

	if (!(who->roles & MGMT_ROLE_ADMIN))
		return vg_errf(err, errlen, -EPERM, "%s may not remove cameras: that needs the admin role", who->name);
	if (!mgmt_camera_id_valid(id) || mgmt_camera_get(db, id, &cam) < 0)
		return vg_errf(err, errlen, -ENOENT, "no camera '%.31s'", id);
	rc = mgmt_tx_begin(db);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database error");
	if (sqlite3_prepare_v2(db->sql, "DELETE FROM cameras WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
		rc = -EIO;
		goto out_rollback;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (rc < 0)
		goto out_rollback;
	snprintf(object, sizeof(object), "camera/%s", id);
	json_t *detail = json_pack("{s:s}", "url", cam.url);
	char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	json_decref(detail);
	rc = text ? mgmt_audit_append_tx(db, who, "camera.remove", object, text, NULL) : -ENOMEM;
	free(text);
	if (rc < 0)
		goto out_rollback;
	rc = mgmt_tx_commit(db);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database error");
	return mgmt_audit_anchor_update(db);

out_rollback:
	mgmt_tx_rollback(db);
	return vg_errf(err, errlen, rc, "database error removing camera '%s'", id);
}

static void copy_text(char *dst, size_t len, const unsigned char *src)
{
	snprintf(dst, len, "%s", src ? (const char *)src : "");
}

static void camera_row(sqlite3_stmt *st, struct mgmt_camera *out)
{
	memset(out, 0, sizeof(*out));
	copy_text(out->id, sizeof(out->id), sqlite3_column_text(st, 0));
	copy_text(out->url, sizeof(out->url), sqlite3_column_text(st, 1));
	copy_text(out->location, sizeof(out->location), sqlite3_column_text(st, 2));
	out->fps = sqlite3_column_int64(st, 3);
	out->has_credentials = sqlite3_column_type(st, 4) != SQLITE_NULL;
	copy_text(out->added_by, sizeof(out->added_by), sqlite3_column_text(st, 5));
	out->added_ns = sqlite3_column_int64(st, 6);
}

#define CAMERA_COLUMNS "id, url, location, fps, credentials IS NOT NULL, added_by, added_ns"

int mgmt_camera_get(struct mgmt_db *db, const char *id, struct mgmt_camera *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql, "SELECT " CAMERA_COLUMNS " FROM cameras WHERE id = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		camera_row(st, out);
		/* credentials IS NOT NULL comes back as an integer, never as the blob */
		out->has_credentials = sqlite3_column_int(st, 4) != 0;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int mgmt_camera_credentials(struct mgmt_db *db, const char *id, char user[CRED_FIELD], char password[CRED_FIELD])
{
	unsigned char key[CRED_KEY_BYTES], plain[2 * CRED_FIELD];
	unsigned long long plain_len;
	sqlite3_stmt *st;
	int rc, len;

	if (sqlite3_prepare_v2(db->sql, "SELECT credentials FROM cameras WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	user[0] = password[0] = '\0';
	if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		sqlite3_finalize(st);
		return 0;
	}
	len = sqlite3_column_bytes(st, 0);
	rc = key_load(db, false, key);
	if (rc == 0 && (len < 0 || (size_t)len < CRED_NONCE_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES ||
			(size_t)len > CRED_NONCE_BYTES + sizeof(plain) + crypto_aead_xchacha20poly1305_ietf_ABYTES))
		rc = -EBADMSG;
	if (rc == 0) {
		const unsigned char *blob = sqlite3_column_blob(st, 0);

		if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plain_len, NULL, blob + CRED_NONCE_BYTES,
							       (unsigned long long)len - CRED_NONCE_BYTES,
							       (const unsigned char *)id, strlen(id), blob, key) != 0)
			rc = -EBADMSG;
	}
	sqlite3_finalize(st);
	sodium_memzero(key, sizeof(key));
	if (rc < 0)
		return rc;
	/* "user\0password\0": both fields bounded by how they were sealed, checked again here. */
	size_t ul = strnlen((const char *)plain, (size_t)plain_len);
	if (ul >= CRED_FIELD || ul + 1 >= plain_len || plain[plain_len - 1] != '\0' ||
	    plain_len - ul - 1 > CRED_FIELD) {
		sodium_memzero(plain, sizeof(plain));
		return -EBADMSG;
	}
	memcpy(user, plain, ul + 1);
	memcpy(password, plain + ul + 1, (size_t)plain_len - ul - 1);
	sodium_memzero(plain, sizeof(plain));
	return 0;
}

int mgmt_camera_list(struct mgmt_db *db, enum mgmt_camera_order order, size_t max,
		     void (*fn)(void *arg, const struct mgmt_camera *c), void *arg)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(db->sql,
			       order == MGMT_CAMERAS_BY_ADDED
				       ? "SELECT " CAMERA_COLUMNS " FROM cameras ORDER BY added_ns, id LIMIT ?"
				       : "SELECT " CAMERA_COLUMNS " FROM cameras ORDER BY id LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, max > INT32_MAX ? INT32_MAX : (int64_t)max);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mgmt_camera c;

		camera_row(st, &c);
		c.has_credentials = sqlite3_column_int(st, 4) != 0;
		fn(arg, &c);
		n++;
	}
	sqlite3_finalize(st);
	return n;
}
