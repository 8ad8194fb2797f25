/*
 * camera.add with hostile credentials, through the control socket's handler as vigilctl sends it:
 * passwords holding '@', ':', '/', '%', a space and unicode, written percent-encoded, unseal to
 * exactly the decoded bytes; credentials in the query string, a raw '@' or '/' in a password and
 * a userinfo-looking path are refused with one line. Then no password, nor its percent-encoded
 * form, nor any 4-byte piece of either shows in a reply, a log line, the audit chain or any text
 * of the database, and neither whole form is in the database's or its WAL's bytes.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vg_test.h"
#include "mgmt_ctl.h"
#include "test_mgmt_common.h"
#include "vg_base.h"
#include "vg_log.h"

static const struct mgmt_actor admin = { "admin.smith", 1001, MGMT_ROLE_ADMIN };

/* Everything a user or an auditor could read: replies and log lines, appended as they come. */
static char seen[1 << 20];
static size_t seen_len;

static void see(const char *text, size_t n)
{
	if (seen_len + n + 1 < sizeof(seen)) {
		memcpy(seen + seen_len, text, n);
		seen_len += n;
		seen[seen_len++] = '\n';
	}
}

static void log_sink(void *arg, enum vg_log_type type, enum vg_log_level level, const char *line)
{
	(void)arg;
	(void)type;
	(void)level;
	see(line, strlen(line));
}

/* Whether TEXT[0..LEN) holds SECRET whole, or (PIECES) any 4-byte run of it. */
static bool holds(const char *text, size_t len, const char *secret, bool pieces)
{
	size_t n = strlen(secret), w = pieces && n > 4 ? 4 : n;

	for (size_t i = 0; i + w <= n; i++)
		if (memmem(text, len, secret + i, w))
			return true;
	return false;
}

/* The hostile passwords: as the admin writes them in the URL, and what the camera must get. */
static const struct {
	const char *id, *user_enc, *user, *pw_enc, *pw;
} cams[] = {
	{ "at", "admin", "admin", "Qz%40Kx%40Vw", "Qz@Kx@Vw" },
	{ "colon", "admin", "admin", "Jm:Rt:Yp9", "Jm:Rt:Yp9" },
	{ "slash", "admin", "admin", "Fh%2FGd%2fBn", "Fh/Gd/Bn" },
	{ "pct", "admin", "admin", "Lw%2540Tk%252FZe", "Lw%40Tk%2FZe" }, /* decoded once, not twice */
	{ "space", "admin", "admin", "Nv%20Hq Ws", "Nv Hq Ws" },
	{ "unicode", "admin", "admin", "%C3%A9Xo%E2%82%ACPy\xc3\xb8Mi", "\xc3\xa9Xo\xe2\x82\xacPy\xc3\xb8Mi" },
	{ "user-at", "ops%40Site7", "ops@Site7", "Gx%3A%2F%40%25%20Ur", "Gx:/@% Ur" },
};

/* Send REQ (a camera.add), keep the reply as seen, return the handler's rc. */
static int add(struct mgmt_ctl *ctl, const char *id, const char *url)
{
	json_t *req = json_pack("{s:s, s:{s:s, s:s}}", "verb", "camera.add", "args", "id", id, "url", url);
	char *text = json_dumps(req, JSON_COMPACT), *reply = NULL;
	int rc = mgmt_ctl_handle(ctl, &admin, text, strlen(text), &reply);

	if (reply) {
		see(reply, strlen(reply));
		json_t *j = json_loads(reply, 0, NULL);
		const char *e = json_string_value(json_object_get(j, "error"));
		CHECK(rc == 0 || (e && *e && !strchr(e, '\n')));
		if (rc < 0 && e)
			printf("refused %s: %s\n", id, e);
		json_decref(j);
	}
	free(reply);
	free(text);
	json_decref(req);
	return rc;
}

/* All text in the database (the audit chain's actors, objects and details, cameras' urls, ...). */
static void db_text(char **out, size_t *len)
{
	static const char *const sql[] = { "SELECT actor, action, object, detail FROM audit",
					   "SELECT id, url, location, added_by FROM cameras" };
	FILE *f = open_memstream(out, len);
	sqlite3 *db;

	CHECK(sqlite3_open(test_db_path, &db) == SQLITE_OK);
	for (size_t q = 0; q < 2; q++) {
		sqlite3_stmt *st;

		CHECK(sqlite3_prepare_v2(db, sql[q], -1, &st, NULL) == SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW)
			for (int c = 0; c < 4; c++)
				fprintf(f, "%s\n", sqlite3_column_text(st, c) ? (const char *)sqlite3_column_text(st, c) : "");
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	fclose(f);
}

static bool file_holds(const char *path, const char *secret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "rb");
	bool found;

	if (!f)
		return false;
	FILE *m = open_memstream(&buf, &len);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	found = holds(buf, len, secret, false);
	free(buf);
	return found;
}

int main(void)
{
	struct mgmt_db *db = NULL;
	struct mgmt_ctl *ctl = NULL;
	struct mgmt_camera cam;
	char err[256], url[512], user[128], pw[128], wal[300];

	vg_log_set_sink(log_sink, NULL);
	CHECK_EQ_INT(vg_log_set_levels("debug"), 0);
	test_db_fresh();
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_ctl_open(&ctl, db, NULL, NULL, err, sizeof(err)), 0);
	if (!db || !ctl)
		return 1;

	/* Each hostile password: added, public URL clean, unsealed to exactly the decoded bytes. */
	for (size_t i = 0; i < VG_ARRAY_SIZE(cams); i++) {
		snprintf(url, sizeof(url), "rtsp://%s:%s@10.0.0.%zu:8554/live/ch1?sub=1", cams[i].user_enc,
			 cams[i].pw_enc, i + 1);
		CHECK_EQ_INT(add(ctl, cams[i].id, url), 0);
		CHECK_EQ_INT(mgmt_camera_get(db, cams[i].id, &cam), 0);
		snprintf(url, sizeof(url), "rtsp://10.0.0.%zu:8554/live/ch1?sub=1", i + 1);
		CHECK(strcmp(cam.url, url) == 0 && cam.has_credentials);
		CHECK_EQ_INT(mgmt_camera_credentials(db, cams[i].id, user, pw), 0);
		if (strcmp(user, cams[i].user) || strcmp(pw, cams[i].pw))
			fprintf(stderr, "%s: unsealed [%s] [%s]\n", cams[i].id, user, pw);
		CHECK(strcmp(user, cams[i].user) == 0 && strcmp(pw, cams[i].pw) == 0);
	}

	/* Refused with one line, and nothing stored: no row, no audit entry holding it. */
	static const struct {
		const char *id, *url, *pw, *why;
	} bad[] = {
		{ "rawat", "rtsp://admin:Bq@Zt@10.0.1.1/live", "Bq@Zt", "%40" },
		{ "rawslash", "rtsp://admin:4411/Wk@10.0.1.2/live", "4411/Wk", "after its host" },
		{ "pathui", "rtsp://10.0.1.3/live/admin:Dj7Hc@x", "Dj7Hc", "after its host" },
		{ "query", "rtsp://10.0.1.4/live?channel=1&password=Mv8Ks", "Mv8Ks", "'password='" },
		{ "query2", "rtsp://10.0.1.5/live?User=admin&PWD=Tq3Lg", "Tq3Lg", "credential" },
		{ "ctrl", "rtsp://admin:Yc%0ARb@10.0.1.6/live", "Yc%0ARb", "control character" },
	};
	for (size_t i = 0; i < VG_ARRAY_SIZE(bad); i++) {
		size_t before = seen_len;

		CHECK_EQ_INT(add(ctl, bad[i].id, bad[i].url), -EINVAL);
		CHECK(strstr(seen + before, bad[i].why) != NULL);
		CHECK_EQ_INT(mgmt_camera_get(db, bad[i].id, &cam), -ENOENT);
	}

	struct mgmt_audit_report r;
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	mgmt_ctl_close(&ctl);
	mgmt_db_close(&db);

	/* Nowhere, in any form. */
	char *text = NULL;
	size_t text_len = 0;
	db_text(&text, &text_len);
	CHECK(strstr(text, "camera.add") != NULL && strstr(text, "rtsp://10.0.0.1:8554/live/ch1?sub=1") != NULL);
	snprintf(wal, sizeof(wal), "%s-wal", test_db_path);
	for (size_t i = 0; i < VG_ARRAY_SIZE(cams); i++) {
		const char *forms[] = { cams[i].pw, cams[i].pw_enc };
		for (size_t k = 0; k < 2; k++) {
			if (holds(seen, seen_len, forms[k], true) || holds(text, text_len, forms[k], true))
				fprintf(stderr, "%s: a piece of its password shows\n", cams[i].id);
			CHECK(!holds(seen, seen_len, forms[k], true));
			CHECK(!holds(text, text_len, forms[k], true));
			CHECK(!file_holds(test_db_path, forms[k]) && !file_holds(wal, forms[k]));
		}
	}
	for (size_t i = 0; i < VG_ARRAY_SIZE(bad); i++) {
		if (holds(seen, seen_len, bad[i].pw, true) || holds(text, text_len, bad[i].pw, true))
			fprintf(stderr, "%s: a piece of its password shows\n", bad[i].id);
		CHECK(!holds(seen, seen_len, bad[i].pw, true) && !holds(text, text_len, bad[i].pw, true));
		CHECK(!file_holds(test_db_path, bad[i].pw) && !file_holds(wal, bad[i].pw));
	}
	free(text);
	test_db_cleanup();
	return vg_test_exit();
}
