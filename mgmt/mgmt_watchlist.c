/*
 * Watchlists as records (mgmt.h): a sealed matcher file handed over by descriptor, kept in
 * vigild's custody with its metadata, listed, shown (subject ids, never descriptors), and removed
 * or purged (bytes overwritten, then unlinked) with an audit entry; purged by the hook vigild
 * installs when a deployment that names it ends (invariant 2). Also the enrolment crops: kept
 * encrypted beside the file for a reviewer to compare an alert's crop against.
 *
 * The file format is matcher/match.h's; it is parsed here (header, sizes, seal, subjects) rather
 * than loaded, because mgmt does not link the matcher, and the matcher validates every value
 * again when a run loads it.
 */
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgmt_int.h"
#include "vg_file.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_keyfile.h"
#include "vg_log.h"

#define WL_HEADER_BYTES 64
#define WL_SEAL_BYTES 32

static const struct mgmt_actor vigild_actor = { "vigild", 0, 0 };

static const char *const state_names[] = {
	[MGMT_WATCHLIST_LIVE] = "live", [MGMT_WATCHLIST_REMOVED] = "removed", [MGMT_WATCHLIST_PURGED] = "purged"
};

const char *mgmt_watchlist_state_name(enum mgmt_watchlist_state s)
{
	return (unsigned)s < VG_ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

/* The state directory: the database's folder (the audit anchor sits beside the database). */
static void state_dir(const struct mgmt_db *db, char *out, size_t len)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", db->anchor_path);
	snprintf(out, len, "%s", dirname(buf));
}

uint32_t mgmt_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int mgmt_read_fd(int fd, uint64_t max, uint8_t **out, size_t *len)
{
	/* vg_file_read_fd's refusals (not a regular file, over the cap) and an empty file are one
	 * answer here: not a watchlist or crops file. */
	int rc = vg_file_read_fd(fd, max, out, len);

	if (rc == -EFBIG || (rc == 0 && *len == 0)) {
		if (rc == 0)
			free(*out);
		return -EINVAL;
	}
	return rc;
}

struct wl_file {
	char model[32];
	uint32_t id, d, n;
	float threshold;
	const uint8_t *entries; /* n x { subject[64], u32 watchlist, f32 desc[d] } */
	size_t entry_bytes;
};

/* Check a matcher file as match_load() would (sizes, seal, one watchlist); its facts into *F. */
static int wl_parse(const uint8_t *buf, size_t len, struct wl_file *f, char *err, size_t errlen)
{
	uint8_t seal[WL_SEAL_BYTES];
	uint32_t n_wl;

	if (len < WL_HEADER_BYTES + WL_SEAL_BYTES || memcmp(buf, "VGWLIST\0", 8) != 0)
		return vg_errf(err, errlen, -EINVAL, "not a watchlist file (vigilctl watchlist import writes them)");
	if (mgmt_le32(buf + 8) != 1 || mgmt_le32(buf + 12) != WL_HEADER_BYTES)
		return vg_errf(err, errlen, -EINVAL, "watchlist file version %u is not 1", mgmt_le32(buf + 8));
	/* the model it was enrolled with: 1..31 bytes, NUL-padded to 32 */
	if (!buf[16] || !memchr(buf + 16, '\0', 32))
		return vg_errf(err, errlen, -EINVAL, "watchlist file: its model id is empty or not terminated");
	memcpy(f->model, buf + 16, 32);
	/* an id that ends up in records and on terminals: the characters model ids use, nothing else */
	if (strspn(f->model, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@+-") != strlen(f->model))
		return vg_errf(err, errlen, -EINVAL, "watchlist file: its model id holds characters other than letters, "
			       "digits and . _ : @ + -");
	f->d = mgmt_le32(buf + 48);
	n_wl = mgmt_le32(buf + 56);
	f->n = mgmt_le32(buf + 60);
	if (f->d < 16 || f->d > 1024 || f->d % 16)
		return vg_errf(err, errlen, -EINVAL, "watchlist file: descriptor dimension %u", f->d);
	if (n_wl != 1)
		return vg_errf(err, errlen, -EINVAL, "a registered watchlist file holds one watchlist, not %u", n_wl);
	if (f->n == 0 || f->n > (16u << 20))
		return vg_errf(err, errlen, -EINVAL, "watchlist file: %u entries", f->n);
	f->entry_bytes = WL_SUBJECT_BYTES + 4 + 4 * (size_t)f->d;
	if (len != WL_HEADER_BYTES + 8 + (size_t)f->n * f->entry_bytes + WL_SEAL_BYTES)
		return vg_errf(err, errlen, -EINVAL, "watchlist file: %zu bytes, not what its header says", len);
	crypto_hash_sha256(seal, buf, len - WL_SEAL_BYTES);
	if (sodium_memcmp(seal, buf + len - WL_SEAL_BYTES, WL_SEAL_BYTES) != 0)
		return vg_errf(err, errlen, -EBADMSG, "watchlist file: its sha256 seal does not match its bytes");
	f->id = mgmt_le32(buf + WL_HEADER_BYTES);
	memcpy(&f->threshold, buf + WL_HEADER_BYTES + 4, 4);
	/* metric 0 is L2, 1 cosine similarity (match.h's enum match_metric, not included here) */
	uint32_t metric = mgmt_le32(buf + 52);
	double max = metric == 1 ? MGMT_WATCHLIST_COSINE_MAX : MGMT_WATCHLIST_L2_MAX;
	if (!isfinite(f->threshold) || f->threshold <= 0 || f->threshold > max)
		return vg_errf(err, errlen, -EINVAL, "watchlist file: threshold %.4g is outside (0, %.0f], the range of %s",
			       (double)f->threshold, max, metric == 1 ? "a cosine similarity" : "an L2 distance");
	f->entries = buf + WL_HEADER_BYTES + 8;
	for (uint32_t i = 0; i < f->n; i++) {
		const uint8_t *e = f->entries + (size_t)i * f->entry_bytes;
		if (!e[0]) /* NUL-padded; all 64 bytes used is a 64-byte id */
			return vg_errf(err, errlen, -EINVAL, "watchlist file: entry %u has no subject id", i);
		if (mgmt_le32(e + WL_SUBJECT_BYTES) != f->id)
			return vg_errf(err, errlen, -EINVAL, "watchlist file: entry %u names another watchlist", i);
	}
	return 0;
}

/* Write LEN bytes to a new file PATH (0600) through PATH.tmp, synced, then renamed into place. */
int mgmt_write_file(const char *path, const uint8_t *buf, size_t len)
{
	char tmp[4104]; /* PATH_MAX and ".tmp" */
	size_t done = 0;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	while (done < len && rc == 0) {
		ssize_t w = write(fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = w < 0 ? -errno : -EIO;
		else
			done += (size_t)w;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

bool mgmt_watchlist_id_valid(const char *s)
{
	return s && *s && strlen(s) < 16;
}

static void copy_col(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

int mgmt_watchlist_get(struct mgmt_db *db, const char *id, struct mgmt_watchlist *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT id, name, threshold, subjects, sha256, path, faces_path IS NOT NULL, created_by,"
			       " created_ns, state, ended_by, COALESCE(ended_ns, 0), end_reason, model FROM watchlists WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		copy_col(out->id, sizeof(out->id), st, 0);
		copy_col(out->name, sizeof(out->name), st, 1);
		out->threshold = sqlite3_column_double(st, 2);
		out->subjects = (uint64_t)sqlite3_column_int64(st, 3);
		copy_col(out->sha256, sizeof(out->sha256), st, 4);
		copy_col(out->path, sizeof(out->path), st, 5);
		out->has_faces = sqlite3_column_int(st, 6);
		copy_col(out->created_by, sizeof(out->created_by), st, 7);
		out->created_ns = sqlite3_column_int64(st, 8);
		out->state = (enum mgmt_watchlist_state)sqlite3_column_int(st, 9);
		copy_col(out->ended_by, sizeof(out->ended_by), st, 10);
		out->ended_ns = sqlite3_column_int64(st, 11);
		copy_col(out->end_reason, sizeof(out->end_reason), st, 12);
		copy_col(out->model, sizeof(out->model), st, 13);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

/* A JSON string body of S (no quotes), for audit details made from user text. */
static void json_body(char *buf, size_t len, const char *s)
{
	json_t *j = json_string(s ? s : "");
	char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

	snprintf(buf, len, "%.*s", t && strlen(t) >= 2 ? (int)strlen(t) - 2 : 0, t ? t + 1 : "");
	free(t);
	json_decref(j);
}

int mgmt_watchlist_add(struct mgmt_db *db, const struct mgmt_actor *who, int fd, int faces_fd, const char *name,
		       double threshold, struct mgmt_watchlist *out, char *err, size_t errlen)
{
	uint8_t *buf = NULL, sealed[SEALED_KEY_BYTES];
	char dir[600], path[700], faces_path[700], key_path[700], id[16], seal_hex[65], object[48], detail[512],
		e_name[300];
	struct mgmt_watchlist prior;
	struct wl_file f;
	uint32_t n_faces = 0;
	sqlite3_stmt *st;
	size_t len = 0;
	int rc;

	if (!who || !(who->roles & (MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR)))
		return vg_errf(err, errlen, -EPERM, "registering a watchlist needs the admin, authoriser or operator role");
	if ((rc = mgmt_text_check("a watchlist's name", name, 127, false, err, errlen)) < 0)
		return rc;
	rc = mgmt_read_fd(fd, WL_FILE_MAX, &buf, &len);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "cannot read the watchlist file: %s",
			       rc == -EINVAL ? "not a regular, non-empty file" : vg_strerror(rc));
	rc = wl_parse(buf, len, &f, err, errlen);
	if (rc < 0)
		goto out_free;
	if (threshold > 0 && fabs(threshold - f.threshold) > 1e-6) {
		rc = vg_errf(err, errlen, -EINVAL, "the file's threshold is %.4g, not %.4g: the matcher judges by the file's",
			     (double)f.threshold, threshold);
		goto out_free;
	}
	snprintf(id, sizeof(id), "%" PRIu32, f.id);
	if (mgmt_watchlist_get(db, id, &prior) == 0) {
		rc = vg_errf(err, errlen, -EEXIST, "watchlist %s exists already (%s, \"%s\"): import with another --id", id,
			     mgmt_watchlist_state_name(prior.state), prior.name);
		goto out_free;
	}
	sodium_bin2hex(seal_hex, sizeof(seal_hex), buf + len - WL_SEAL_BYTES, WL_SEAL_BYTES);
	state_dir(db, dir, sizeof(dir));
	snprintf(key_path, sizeof(key_path), "%s/appliance.key", dir);
	snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/watchlists");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = vg_errf(err, errlen, -errno, "%s: %s", dir, vg_strerror(-errno));
		goto out_free;
	}
	snprintf(path, sizeof(path), "%s/wl-%s.vgw", dir, id);
	snprintf(faces_path, sizeof(faces_path), "%s/wl-%s.faces", dir, id);
	rc = mgmt_write_file(path, buf, len);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "%s: %s", path, vg_strerror(rc));
		goto out_free;
	}
	if (faces_fd >= 0 && (rc = mgmt_faces_seal(faces_fd, faces_path, id, key_path, sealed, &n_faces, err, errlen)) < 0)
		goto out_unlink;

	rc = mgmt_tx_begin(db);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "database busy or failing");
		goto out_unlink;
	}
	if (sqlite3_prepare_v2(db->sql,
			       "INSERT INTO watchlists (id, name, threshold, subjects, sha256, path, faces_path, faces_key,"
			       " created_by, created_uid, created_ns, state, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		goto out_rollback;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 3, (double)f.threshold);
	sqlite3_bind_int64(st, 4, f.n);
	sqlite3_bind_text(st, 5, seal_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, path, -1, SQLITE_STATIC);
	if (faces_fd >= 0) {
		sqlite3_bind_text(st, 7, faces_path, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 8, sealed, sizeof(sealed), SQLITE_STATIC);
	}
	sqlite3_bind_text(st, 9, who->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, who->uid);
	sqlite3_bind_int64(st, 11, (int64_t)vg_clock_realtime_ns());
	sqlite3_bind_text(st, 12, f.model, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto out_rollback;
	/* The audit entry holds the facts needed to check the file later: its seal, never its contents. */
	json_body(e_name, sizeof(e_name), name);
	snprintf(object, sizeof(object), "watchlist/%s", id);
	snprintf(detail, sizeof(detail),
		 "{\"name\":\"%s\",\"threshold\":%.4f,\"subjects\":%" PRIu32 ",\"sha256\":\"%s\",\"enrolment_crops\":%" PRIu32
		 ",\"model\":\"%s\"}",
		 e_name, (double)f.threshold, f.n, seal_hex, n_faces, f.model);
	if (mgmt_audit_append_tx(db, who, "watchlist.add", object, detail, NULL) < 0)
		goto out_rollback;
	rc = mgmt_tx_commit(db);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "database commit failed");
		goto out_unlink;
	}
	mgmt_audit_anchor_update(db);
	rc = out ? mgmt_watchlist_get(db, id, out) : 0;
	goto out_free;

out_rollback:
	vg_errf(err, errlen, -EIO, "database error: %s", sqlite3_errmsg(db->sql));
	mgmt_tx_rollback(db);
	rc = -EIO;
out_unlink:
	vg_file_scrub(path);
	vg_file_scrub(faces_path);
out_free:
	sodium_memzero(sealed, sizeof(sealed));
	if (buf)
		sodium_memzero(buf, len);
	free(buf);
	return rc;
}

int mgmt_watchlist_subjects(struct mgmt_db *db, const char *id, size_t max, void (*fn)(void *arg, const char *subject),
			    void *arg)
{
	struct mgmt_watchlist w;
	struct wl_file f;
	char hex[65], e[8];
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd, rc;

	rc = mgmt_watchlist_get(db, id, &w);
	if (rc < 0)
		return rc;
	if (w.state != MGMT_WATCHLIST_LIVE)
		return -ESTALE;
	fd = open(w.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	rc = mgmt_read_fd(fd, WL_FILE_MAX, &buf, &len);
	close(fd);
	if (rc < 0)
		return rc;
	rc = wl_parse(buf, len, &f, e, sizeof(e));
	if (rc == 0) {
		sodium_bin2hex(hex, sizeof(hex), buf + len - WL_SEAL_BYTES, WL_SEAL_BYTES);
		if (strcmp(hex, w.sha256) != 0)
			rc = -EBADMSG; /* a sealed file, but not the one registered */
	}
	for (uint32_t i = 0; rc == 0 && i < f.n && i < max; i++) {
		char subject[WL_SUBJECT_BYTES + 1];

		memcpy(subject, f.entries + (size_t)i * f.entry_bytes, WL_SUBJECT_BYTES);
		subject[WL_SUBJECT_BYTES] = '\0';
		fn(arg, subject);
	}
	sodium_memzero(buf, len);
	free(buf);
	return rc < 0 ? (rc == -EINVAL ? -EBADMSG : rc) : (int)f.n;
}

/* The first authorised or active deployment other than EXCEPT that names watchlist ID: 0 if none. */
static int64_t in_use_by(struct mgmt_db *db, const char *id, int64_t except, enum mgmt_deployment_state *state)
{
	sqlite3_stmt *st;
	int64_t dep = 0;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT d.id, d.state FROM deployment_watchlists w JOIN deployments d ON d.id = w.deployment_id"
			       " WHERE w.watchlist_id = ? AND d.state IN (?, ?) AND d.id != ? ORDER BY d.id LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, MGMT_DEPLOYMENT_AUTHORISED);
	sqlite3_bind_int(st, 3, MGMT_DEPLOYMENT_ACTIVE);
	sqlite3_bind_int64(st, 4, except);
	if (sqlite3_step(st) == SQLITE_ROW) {
		dep = sqlite3_column_int64(st, 0);
		*state = (enum mgmt_deployment_state)sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	return dep;
}

/* Delete W's files, then mark it ended in state TO, audited as ACTION by WHO: one transaction. */
static int end_watchlist(struct mgmt_db *db, const struct mgmt_actor *who, const struct mgmt_watchlist *w,
			 enum mgmt_watchlist_state to, const char *action, const char *reason, int64_t deployment)
{
	char faces_path[700] = "", object[48], detail[1000], e_reason[520];
	sqlite3_stmt *st;
	int64_t keep_faces = 0;
	int rc;

	/* Bytes first: if deleting fails the record stays live and the next purge retries, so a record
	 * never says purged while its file is still on disk. The descriptors always go; the encrypted
	 * enrolment crops stay while alerts need them (mgmt_watchlist_faces_release ends them). */
	if (w->has_faces) {
		snprintf(faces_path, sizeof(faces_path), "%.*s.faces", (int)strlen(w->path) - 4, w->path);
		keep_faces = mgmt_alerts_needing_faces(db, w->sha256);
		if (keep_faces < 0)
			return (int)keep_faces;
	}
	rc = vg_file_scrub(w->path);
	if (rc == 0 && faces_path[0] && keep_faces == 0)
		rc = vg_file_scrub(faces_path);
	if (rc < 0) {
		VG_LOG(MGMT, ERR, "watchlist %s: deleting its files failed: %s", w->id, vg_strerror(rc));
		return rc;
	}
	rc = mgmt_tx_begin(db);
	if (rc < 0)
		return rc;
	if (sqlite3_prepare_v2(db->sql,
			       keep_faces ? "UPDATE watchlists SET state = ?, ended_by = ?, ended_ns = ?, end_reason = ?"
					    " WHERE id = ? AND state = 0"
					  : "UPDATE watchlists SET state = ?, ended_by = ?, ended_ns = ?, end_reason = ?,"
					    " faces_key = NULL WHERE id = ? AND state = 0",
			       -1, &st, NULL) != SQLITE_OK) {
		mgmt_tx_rollback(db);
		return -EIO;
	}
	sqlite3_bind_int(st, 1, (int)to);
	sqlite3_bind_text(st, 2, who->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)vg_clock_realtime_ns());
	sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, w->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (rc == 0 && sqlite3_changes(db->sql) != 1)
		rc = -ESTALE;
	json_body(e_reason, sizeof(e_reason), reason);
	snprintf(object, sizeof(object), "watchlist/%s", w->id);
	if (deployment > 0)
		snprintf(detail, sizeof(detail),
			 "{\"reason\":\"%s\",\"deployment\":%" PRId64 ",\"sha256\":\"%s\",\"files_deleted\":true,"
			 "\"enrolment_crops_kept_for_alerts\":%" PRId64 "}",
			 e_reason, deployment, w->sha256, keep_faces);
	else
		snprintf(detail, sizeof(detail),
			 "{\"reason\":\"%s\",\"sha256\":\"%s\",\"files_deleted\":true,"
			 "\"enrolment_crops_kept_for_alerts\":%" PRId64 "}",
			 e_reason, w->sha256, keep_faces);
	if (rc == 0)
		rc = mgmt_audit_append_tx(db, who, action, object, detail, NULL);
	if (rc < 0 || (rc = mgmt_tx_commit(db)) < 0) {
		mgmt_tx_rollback(db);
		return rc;
	}
	return mgmt_audit_anchor_update(db);
}

int mgmt_watchlist_remove(struct mgmt_db *db, const struct mgmt_actor *who, const char *id, bool purge,
			  const char *reason, char *err, size_t errlen)
{
	enum mgmt_deployment_state dstate = MGMT_DEPLOYMENT_ACTIVE;
	struct mgmt_watchlist w;
	int64_t dep;
	int rc;

	if (!who || !(who->roles & (MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR)))
		return vg_errf(err, errlen, -EPERM, "removing a watchlist needs the admin, authoriser or operator role");
	if ((rc = mgmt_text_check("the reason for removing a watchlist", reason, 511, true, err, errlen)) < 0)
		return rc;
	if (!mgmt_watchlist_id_valid(id) || (rc = mgmt_watchlist_get(db, id, &w)) == -ENOENT)
		return vg_errf(err, errlen, -ENOENT, "no watchlist %s", id ? id : "");
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database error");
	if (w.state != MGMT_WATCHLIST_LIVE)
		return vg_errf(err, errlen, -ESTALE, "watchlist %s was %s already", id, mgmt_watchlist_state_name(w.state));
	dep = in_use_by(db, id, 0, &dstate);
	if (dep < 0)
		return vg_errf(err, errlen, (int)dep, "database error");
	if (dep > 0) {
		char object[48];

		snprintf(object, sizeof(object), "watchlist/%s", id);
		mgmt_audit_append(db, who, purge ? "watchlist.purge.refused" : "watchlist.remove.refused", object,
				  "{\"why\":\"in use\"}", NULL);
		return vg_errf(err, errlen, -EBUSY, "watchlist %s is in use by deployment %" PRId64 " (%s): stop it first", id,
			       dep, mgmt_deployment_state_name(dstate));
	}
	rc = end_watchlist(db, who, &w, purge ? MGMT_WATCHLIST_PURGED : MGMT_WATCHLIST_REMOVED,
			   purge ? "watchlist.purge" : "watchlist.remove", reason, 0);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "watchlist %s was not deleted: %s", id, vg_strerror(rc));
	return 0;
}

int mgmt_watchlist_purge_hook(void *arg, int64_t deployment_id, const char *watchlist_id)
{
	struct mgmt_db *db = arg;
	enum mgmt_deployment_state dstate;
	struct mgmt_watchlist w;
	int64_t other;
	char object[48], detail[96];
	int rc = mgmt_watchlist_get(db, watchlist_id, &w);

	if (rc == -ENOENT || (rc == 0 && w.state != MGMT_WATCHLIST_LIVE))
		return 0; /* never registered, or gone already: nothing of it on this disk */
	if (rc < 0)
		return rc;
	other = in_use_by(db, watchlist_id, deployment_id, &dstate);
	if (other < 0)
		return (int)other;
	if (other > 0) {
		/* Another authorised deployment names it too: purging now would break that one; its end purges it. */
		snprintf(object, sizeof(object), "watchlist/%s", watchlist_id);
		snprintf(detail, sizeof(detail), "{\"deployment\":%" PRId64 ",\"still_used_by\":%" PRId64 "}", deployment_id,
			 other);
		return mgmt_audit_append(db, &vigild_actor, "watchlist.purge.deferred", object, detail, NULL);
	}
	return end_watchlist(db, &vigild_actor, &w, MGMT_WATCHLIST_PURGED, "watchlist.purge", "its deployment ended",
			     deployment_id);
}

int mgmt_watchlist_check_for_deployment(struct mgmt_db *db, const char *id, const char *seal,
					struct mgmt_watchlist *w, char *err, size_t errlen)
{
	enum mgmt_deployment_state dstate = MGMT_DEPLOYMENT_REQUESTED;
	sqlite3_stmt *st;
	int64_t dep = 0;
	int rc = mgmt_watchlist_id_valid(id) ? mgmt_watchlist_get(db, id, w) : -ENOENT;

	/* Invariant 2: an authorisation names watchlists in vigild's custody, by their seal; a file
	 * elsewhere cannot be authorised, so a run can never be given one. */
	if (rc == -ENOENT)
		return vg_errf(err, errlen, -ENOENT, "vigild holds no watchlist %.32s: add it (vigilctl watchlist add "
			       "or import --name) before naming it in a deployment", id);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database error");
	if (w->state != MGMT_WATCHLIST_LIVE)
		return vg_errf(err, errlen, -ESTALE, "watchlist %s was %s: import it again for a new deployment", id,
			       mgmt_watchlist_state_name(w->state));
	if (!seal || strcmp(seal, w->sha256) != 0)
		return vg_errf(err, errlen, -EBADMSG,
			       "watchlist %s's seal is %.16s..., not the one given: name the watchlist you reviewed", id,
			       w->sha256);
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT d.id, d.state FROM deployment_watchlists x JOIN deployments d ON d.id = x.deployment_id"
			       " WHERE x.watchlist_id = ? AND d.state IN (?, ?, ?) ORDER BY d.id LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return vg_errf(err, errlen, -EIO, "database error");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, MGMT_DEPLOYMENT_REQUESTED);
	sqlite3_bind_int(st, 3, MGMT_DEPLOYMENT_AUTHORISED);
	sqlite3_bind_int(st, 4, MGMT_DEPLOYMENT_ACTIVE);
	if (sqlite3_step(st) == SQLITE_ROW) {
		dep = sqlite3_column_int64(st, 0);
		dstate = (enum mgmt_deployment_state)sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	/* The guidance: a watchlist is compiled for one deployment, and purged when it ends. */
	if (dep > 0)
		return vg_errf(err, errlen, -EBUSY, "watchlist %s belongs to deployment %" PRId64 " (%s): a watchlist is specific to one deployment",
			       id, dep, mgmt_deployment_state_name(dstate));
	return 0;
}

int mgmt_watchlist_list(struct mgmt_db *db, size_t max, void (*fn)(void *arg, const struct mgmt_watchlist *w),
			void *arg)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(db->sql, "SELECT id FROM watchlists ORDER BY created_ns DESC, id LIMIT ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, max > INT32_MAX ? INT32_MAX : (int64_t)max);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mgmt_watchlist w;

		if (mgmt_watchlist_get(db, (const char *)sqlite3_column_text(st, 0), &w) == 0) {
			fn(arg, &w);
			n++;
		}
	}
	sqlite3_finalize(st);
	return n;
}

int mgmt_watchlist_deployments(struct mgmt_db *db, const char *id, int64_t *ids, size_t cap)
{
	sqlite3_stmt *st;
	size_t n = 0;

	if (sqlite3_prepare_v2(db->sql, "SELECT deployment_id FROM deployment_watchlists WHERE watchlist_id = ? ORDER BY 1",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while (n < cap && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (int)n;
}

int mgmt_watchlist_unused(struct mgmt_db *db, char (*ids)[16], size_t cap)
{
	sqlite3_stmt *st;
	size_t n = 0;

	if (sqlite3_prepare_v2(db->sql,
			       "SELECT id FROM watchlists w WHERE state = 0 AND NOT EXISTS (SELECT 1 FROM deployment_watchlists"
			       " x JOIN deployments d ON d.id = x.deployment_id WHERE x.watchlist_id = w.id AND d.state IN (?, ?))"
			       " ORDER BY id LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int(st, 1, MGMT_DEPLOYMENT_AUTHORISED);
	sqlite3_bind_int(st, 2, MGMT_DEPLOYMENT_ACTIVE);
	sqlite3_bind_int64(st, 3, cap > INT32_MAX ? INT32_MAX : (int64_t)cap);
	while (n < cap && sqlite3_step(st) == SQLITE_ROW)
		snprintf(ids[n++], sizeof(ids[0]), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return (int)n;
}
