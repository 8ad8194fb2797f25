/*
 * mgmt's admin state: cameras (URLs redacted, credentials sealed outside the database, a sealed
 * blob moved to another camera or a key left readable refused), config.set through a lent apply
 * hook (unknown, restart-only, secret and bad values refused with one line and nothing stored;
 * what is stored outranks the file on the next load), retention (defaults, bounds, audited), and
 * audit.export paging over more than a page, audited once, hash for hash what verify checks.
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "vg_test.h"
#include "mgmt_ctl.h"
#include "test_mgmt_common.h"
#include "vg_base.h"

static const struct mgmt_actor admin = { "admin.smith", 1001, MGMT_ROLE_ADMIN };
static const struct mgmt_actor alice = { "sgt.alice", 2001, MGMT_ROLE_OPERATOR };
static const struct mgmt_actor dave = { "auditor.dave", 2004, MGMT_ROLE_AUDITOR };

/* A component's settings, as a stage would declare them. */
struct demo_conf {
	int64_t fps;
	char mode[16];
	char token[32];
	char dir[64];
};
static const char *const modes[] = { "fast", "exact", NULL };
static const struct vg_conf_entry demo_entries[] = {
	VG_CONF_INT("demo.fps", VG_CONF_MUTABLE, struct demo_conf, fps, "10", 1, 60, "frames per second"),
	VG_CONF_STRING("demo.mode", VG_CONF_MUTABLE, struct demo_conf, mode, "fast", "fast or exact"),
	VG_CONF_STRING("demo.token", VG_CONF_MUTABLE | VG_CONF_SECRET, struct demo_conf, token, "", "a secret"),
	VG_CONF_STRING("demo.dir", VG_CONF_RESTART, struct demo_conf, dir, "/var/x", "restart only"),
};
static const struct vg_conf_table demo_table = { "demo", demo_entries, VG_ARRAY_SIZE(demo_entries),
						 sizeof(struct demo_conf) };

static int applied;

/* vigild's hook, reduced: parse into the live object, refuse a mode that is not one of the modes. */
static int demo_apply(void *arg, const struct mgmt_actor *who, const char *name, const char *value, char *err,
		      size_t errlen)
{
	const struct vg_conf_set *set = arg;
	struct demo_conf *live = set->objs[0], next = *live;
	void *objs[] = { &next };
	struct vg_conf_set scratch = { set->tables, objs, 1 };
	int rc;

	(void)who;
	if ((rc = vg_conf_set_value(&scratch, name, value, true, err, errlen)) < 0)
		return rc;
	if (strcmp(next.mode, modes[0]) != 0 && strcmp(next.mode, modes[1]) != 0)
		return vg_errf(err, errlen, -EINVAL, "demo.mode: '%s' is neither fast nor exact", next.mode);
	*live = next;
	applied++;
	return 0;
}

static json_t *call(struct mgmt_ctl *ctl, const struct mgmt_actor *who, const char *req, int want_rc)
{
	char *reply = NULL;
	int rc = mgmt_ctl_handle(ctl, who, req, strlen(req), &reply);
	json_t *j = reply ? json_loads(reply, 0, NULL) : NULL;

	if (rc != want_rc)
		fprintf(stderr, "%.100s -> %s\n", req, reply ? reply : "(null)");
	CHECK_EQ_INT(rc, want_rc);
	if (j && want_rc < 0) {
		const char *e = json_string_value(json_object_get(j, "error"));
		CHECK(e && *e && !strchr(e, '\n'));
	}
	free(reply);
	return j;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

static bool file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	static char buf[4 << 20];
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return contains(buf, n, needle);
}

static void test_cameras(struct mgmt_db *db)
{
	struct mgmt_camera cam;
	char out[256], user[128], pw[128], err[256], key[300];

	/* An '@' after the host is refused: it is where a password with a raw '/' would leave the rest
	 * of itself (rtsp://u:12/x@h/), so it is never kept in the public URL (vg_url.h). */
	CHECK_EQ_INT(mgmt_url_redact("rtsp://u:p@h:554/a@b", out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(mgmt_url_redact("rtsp://h/x", out, sizeof(out)), 0);
	CHECK(strcmp(out, "rtsp://h/x") == 0);
	CHECK_EQ_INT(mgmt_url_redact("rtsp://user@h", out, sizeof(out)), 0);
	CHECK(strcmp(out, "rtsp://h/") == 0); /* libcurl writes an empty path as "/" */
	CHECK_EQ_INT(mgmt_url_redact("http://u:p@h/", out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(mgmt_url_redact("rtsp://u:p@/x", out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(mgmt_url_redact("rtsp://u:p@:554/x", out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(mgmt_url_redact("rtsp://h/long", out, 8), -ENOSPC);

	struct mgmt_camera_add a = { "gate4", "rtsp://officer:Hunter2-pw@10.0.0.4:554/live", "Gate 4", 0 };
	CHECK_EQ_INT(mgmt_camera_add(db, &alice, &a, err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_camera_add(db, &admin, &a, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_camera_add(db, &admin, &a, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "Hunter2") == NULL);
	struct mgmt_camera_add b = { "gate5", "rtsp://viewer:Other-pw@10.0.0.5/live", NULL, 25 };
	CHECK_EQ_INT(mgmt_camera_add(db, &admin, &b, err, sizeof(err)), 0);
	struct mgmt_camera_add bad = { "gate6", "rtsp://x:Hunter2-pw@", NULL, 0 };
	CHECK_EQ_INT(mgmt_camera_add(db, &admin, &bad, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "Hunter2") == NULL && !strchr(err, '\n'));
	bad = (struct mgmt_camera_add){ "gate6", "rtsp://h/x", NULL, 61 };
	CHECK_EQ_INT(mgmt_camera_add(db, &admin, &bad, err, sizeof(err)), -ERANGE);
	bad = (struct mgmt_camera_add){ "gate/6", "rtsp://h/x", NULL, 0 };
	CHECK_EQ_INT(mgmt_camera_add(db, &admin, &bad, err, sizeof(err)), -EINVAL);

	CHECK_EQ_INT(mgmt_camera_get(db, "gate4", &cam), 0);
	CHECK(strcmp(cam.url, "rtsp://10.0.0.4:554/live") == 0 && cam.has_credentials && cam.fps == 10);
	CHECK(strcmp(cam.location, "Gate 4") == 0 && strcmp(cam.added_by, "admin.smith") == 0);
	CHECK_EQ_INT(mgmt_camera_credentials(db, "gate4", user, pw), 0);
	CHECK(strcmp(user, "officer") == 0 && strcmp(pw, "Hunter2-pw") == 0);
	CHECK_EQ_INT(mgmt_camera_credentials(db, "nosuch", user, pw), -ENOENT);

	/* Neither the database nor its WAL holds them; a dump of it cannot leak them. */
	char wal[300];
	snprintf(wal, sizeof(wal), "%s-wal", test_db_path);
	CHECK(!file_contains(test_db_path, "Hunter2") && !file_contains(wal, "Hunter2"));
	CHECK(!file_contains(test_db_path, "officer") && !file_contains(wal, "officer"));
	CHECK(file_contains(wal, "rtsp://10.0.0.4:554/live") || file_contains(test_db_path, "rtsp://10.0.0.4:554/live"));

	/* gate5's sealed credentials copied onto gate4's row do not open there (the id is bound in). */
	CHECK_EQ_INT(raw_sql("UPDATE cameras SET credentials = (SELECT credentials FROM cameras WHERE id = 'gate5')"
			     " WHERE id = 'gate4'"), 0);
	CHECK_EQ_INT(mgmt_camera_credentials(db, "gate4", user, pw), -EBADMSG);
	CHECK_EQ_INT(mgmt_camera_credentials(db, "gate5", user, pw), 0);
	CHECK(strcmp(user, "viewer") == 0 && strcmp(pw, "Other-pw") == 0);
	/* A key others can read is refused, not used. */
	snprintf(key, sizeof(key), "%s-credentials.key", test_db_path);
	CHECK_EQ_INT(chmod(key, 0644), 0);
	CHECK_EQ_INT(mgmt_camera_credentials(db, "gate5", user, pw), -EPERM);
	CHECK_EQ_INT(chmod(key, 0600), 0);

	CHECK_EQ_INT(mgmt_camera_remove(db, &alice, "gate5", err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_camera_remove(db, &admin, "gate5", err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_camera_remove(db, &admin, "gate5", err, sizeof(err)), -ENOENT);
	CHECK_EQ_INT(mgmt_camera_get(db, "gate5", &cam), -ENOENT);
}

static void test_config(struct mgmt_db *db, struct mgmt_ctl *ctl)
{
	struct demo_conf live, reloaded;
	const struct vg_conf_table *tables[] = { &demo_table };
	void *objs[] = { &live }, *objs2[] = { &reloaded };
	struct vg_conf_set set = { tables, objs, 1 }, set2 = { tables, objs2, 1 };
	char err[256];
	json_t *j;

	CHECK_EQ_INT(vg_conf_set_defaults(&set, err, sizeof(err)), 0);
	j = call(ctl, &admin, "{\"verb\":\"config.get\"}", -EOPNOTSUPP); /* nothing lent yet */
	json_decref(j);
	mgmt_ctl_set_conf(ctl, &set, demo_apply, &set);

	j = call(ctl, &dave, "{\"verb\":\"config.get\"}", 0);
	CHECK(j && json_array_size(json_object_get(json_object_get(j, "result"), "settings")) == 4);
	char *text = j ? json_dumps(j, 0) : NULL;
	CHECK(text && strstr(text, "\"(secret)\"") != NULL); /* a secret's value is never shown */
	free(text);
	json_decref(j);
	json_decref(call(ctl, &alice, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.fps\",\"value\":\"5\"}}", -EPERM));
	json_decref(call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.nope\",\"value\":\"5\"}}", -ENOENT));
	json_decref(call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.dir\",\"value\":\"/y\"}}", -EPERM));
	json_decref(call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.token\",\"value\":\"t\"}}", -EPERM));
	json_decref(call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.fps\",\"value\":\"99\"}}", -ERANGE));
	json_decref(call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.fps\",\"value\":\"x\"}}", -EINVAL));
	json_decref(call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.fps\"}}", -EINVAL));
	/* Refused by the hook: nothing stored, nothing audited, nothing changed. */
	json_decref(call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.mode\",\"value\":\"slow\"}}", -EINVAL));
	CHECK_EQ_INT(applied, 0);
	CHECK(strcmp(live.mode, "fast") == 0 && live.fps == 10);

	j = call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.fps\",\"value\":\"25\"}}", 0);
	CHECK(j && json_is_true(json_object_get(json_object_get(j, "result"), "stored")));
	json_decref(j);
	json_decref(call(ctl, &admin, "{\"verb\":\"config.set\",\"args\":{\"name\":\"demo.mode\",\"value\":\"exact\"}}", 0));
	CHECK_EQ_INT(applied, 2);
	CHECK(live.fps == 25 && strcmp(live.mode, "exact") == 0);

	/* A restart: the file's values first, then what was stored over them. */
	CHECK_EQ_INT(vg_conf_set_defaults(&set2, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_settings_load(db, &set2, err, sizeof(err)), 2);
	CHECK(reloaded.fps == 25 && strcmp(reloaded.mode, "exact") == 0);
	/* A stored row this program no longer takes is skipped, never fatal. */
	CHECK_EQ_INT(raw_sql("INSERT INTO settings VALUES ('demo.gone', '1', 'x', 0), ('demo.dir', '/evil', 'x', 0),"
			     " ('demo.fps', '1000', 'x', 0) ON CONFLICT(name) DO UPDATE SET value = excluded.value"), 0);
	CHECK_EQ_INT(vg_conf_set_defaults(&set2, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_settings_load(db, &set2, err, sizeof(err)), 1);
	CHECK(reloaded.fps == 10 && strcmp(reloaded.dir, "/var/x") == 0 && strcmp(reloaded.mode, "exact") == 0);
	mgmt_ctl_set_conf(ctl, NULL, NULL, NULL);
}

static void test_retention(struct mgmt_db *db, struct mgmt_ctl *ctl)
{
	struct mgmt_retention r;
	char err[256];

	CHECK_EQ_INT(mgmt_retention_get(db, &r), 0);
	CHECK(r.confirmed_s == 31 * 86400 && r.rejected_s == 86400 && r.unreviewed_s == 86400);
	r = (struct mgmt_retention){ 90 * 86400, 0, 2 * 86400 };
	CHECK_EQ_INT(mgmt_retention_set(db, &alice, &r, err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_retention_set(db, &admin, &r, err, sizeof(err)), 0);
	r.unreviewed_s = 3600;
	CHECK_EQ_INT(mgmt_retention_set(db, &admin, &r, err, sizeof(err)), -ERANGE);
	CHECK_EQ_INT(mgmt_retention_get(db, &r), 0);
	/* 0 days is 1 s: the store reads 0 as its 24 h default. */
	CHECK(r.confirmed_s == 90 * 86400 && r.rejected_s == 1 && r.unreviewed_s == 2 * 86400);
	json_decref(call(ctl, &admin,
			 "{\"verb\":\"retention.set\",\"args\":{\"confirmed_days\":1,\"rejected_days\":4000,"
			 "\"unreviewed_days\":1}}",
			 -ERANGE));
	json_decref(call(ctl, &admin, "{\"verb\":\"retention.set\",\"args\":{\"confirmed_days\":1}}", -EINVAL));
	json_t *j = call(ctl, &alice, "{\"verb\":\"retention.show\"}", 0);
	CHECK(j && json_integer_value(json_object_get(json_object_get(j, "result"), "confirmed_days")) == 90);
	json_decref(j);
}

static void test_export(struct mgmt_db *db, struct mgmt_ctl *ctl)
{
	struct mgmt_audit_report rep;
	int64_t since = 0, expect = 1, pages = 0;
	bool more = true;
	char req[128];

	for (int i = 0; i < 1500; i++)
		CHECK_EQ_INT(mgmt_audit_append(db, &admin, "test.fill", "x", "{\"n\":1}", NULL), 0);
	json_decref(call(ctl, &alice, "{\"verb\":\"audit.export\"}", -EPERM));
	json_decref(call(ctl, &dave, "{\"verb\":\"audit.export\",\"args\":{\"since\":-1}}", -EINVAL));
	while (more) {
		snprintf(req, sizeof(req), "{\"verb\":\"audit.export\",\"args\":{\"since\":%lld}}", (long long)since);
		json_t *j = call(ctl, &dave, req, 0), *res = json_object_get(j, "result"), *e;
		size_t i;

		CHECK(res != NULL);
		if (!res) {
			json_decref(j);
			break;
		}
		json_array_foreach(json_object_get(res, "entries"), i, e) {
			CHECK_EQ_INT(json_integer_value(json_object_get(e, "seq")), expect);
			CHECK(strlen(json_string_value(json_object_get(e, "hash"))) == 64);
			CHECK(strlen(json_string_value(json_object_get(e, "prev_hash"))) == 64);
			expect++;
		}
		more = json_is_true(json_object_get(res, "more"));
		since = json_integer_value(json_object_get(res, "last"));
		pages++;
		json_decref(j);
	}
	CHECK_EQ_INT(mgmt_audit_verify(db, &rep), 0);
	CHECK_EQ_INT(expect - 1, rep.entries); /* every entry, the export's own record the last */
	CHECK(pages >= 2);
}

int main(void)
{
	struct mgmt_db *db = NULL;
	struct mgmt_ctl *ctl = NULL;
	struct mgmt_audit_report r;
	char err[256];

	test_db_fresh();
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_ctl_open(&ctl, db, NULL, NULL, err, sizeof(err)), 0);
	if (!db || !ctl)
		return 1;
	test_cameras(db);
	test_config(db, ctl);
	test_retention(db, ctl);
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	test_export(db, ctl);
	mgmt_ctl_close(&ctl);
	mgmt_db_close(&db);
	test_db_cleanup();
	return vg_test_exit();
}
