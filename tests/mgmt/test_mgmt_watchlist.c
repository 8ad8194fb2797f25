/*
 * mgmt watchlists as records: a sealed matcher file registered by descriptor (its threshold and
 * seal recorded, a bad file or a second registration of its id refused), shown as subject ids,
 * refused removal while an authorised or active deployment names it, purged from disk when that
 * deployment ends (invariant 2); its enrolment crops kept encrypted and gone with the purge; the
 * public record hour by hour, and review outcomes pending for the evidence store. The audit chain
 * verifies at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vg_test.h"
#include "mgmt_ctl.h"
#include "test_mgmt_common.h"

static const struct mgmt_actor alice = { "sgt.alice", 2001, MGMT_ROLE_OPERATOR };
static const struct mgmt_actor carol = { "supt.carol", 2003, MGMT_ROLE_AUTHORISER };
static const struct mgmt_actor dave = { "auditor.dave", 2004, MGMT_ROLE_AUDITOR };

/* Enrolment crops for S-0 and S-1: fake JPEG bytes (the store of crops does not decode them). */
static int crops_file(void)
{
	static const uint8_t j0[] = { 0xff, 0xd8, 1, 2, 3, 0xff, 0xd9 }, j1[] = { 0xff, 0xd8, 9, 9, 0xff, 0xd9 };
	uint8_t b[64];
	size_t w = 0;
	int fd = memfd_create("crops", MFD_CLOEXEC);

	for (int s = 0; s < 2; s++) {
		const uint8_t *j = s ? j1 : j0;
		uint32_t jl = s ? sizeof(j1) : sizeof(j0);
		b[w++] = 3, b[w++] = 0;
		memcpy(b + w, s ? "S-1" : "S-0", 3);
		w += 3;
		test_put32(b + w, jl);
		w += 4;
		memcpy(b + w, j, jl);
		w += jl;
	}
	if (write(fd, b, w) != (ssize_t)w)
		abort();
	return fd;
}

static void count_subject(void *arg, const char *subject)
{
	(*(int *)arg)++;
	CHECK(strncmp(subject, "S-", 2) == 0);
}

static int count_rows(const char *sql)
{
	sqlite3 *q;
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_open(test_db_path, &q) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(q, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(q);
	return n;
}

static bool exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* What the steps share: the database, watchlist 7's record and files, and the deployment naming it. */
struct wl_case {
	struct mgmt_db *db;
	const struct mgmt_deployment_request *req;
	struct mgmt_watchlist w;
	char key_path[300], faces_path[600];
	int64_t dep;
};

/* Watchlist 7 registered from its file and crops, after the refusals; then refused a second time. */
static void register_watchlist(struct wl_case *c)
{
	char err[256];
	uint8_t jpeg[64];
	size_t jlen = 0;
	int fd, cfd, n = 0;

	/* Refusals: the role, a broken seal, a threshold other than the file's. */
	fd = test_wl_file(7, 0.5f, 3, false);
	CHECK_EQ_INT(mgmt_watchlist_add(c->db, &dave, fd, -1, "Stadium list", 0, &c->w, err, sizeof(err)), -EPERM);
	close(fd);
	fd = test_wl_file(7, 0.5f, 3, true);
	CHECK_EQ_INT(mgmt_watchlist_add(c->db, &alice, fd, -1, "Stadium list", 0, &c->w, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "seal") != NULL);
	close(fd);
	fd = test_wl_file(7, 0.5f, 3, false);
	CHECK_EQ_INT(mgmt_watchlist_add(c->db, &alice, fd, -1, "Stadium list", 0.6, &c->w, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "threshold") != NULL);

	/* Registered: id from the file, its threshold, its subjects, a copy in custody, crops sealed. */
	cfd = crops_file();
	CHECK_EQ_INT(mgmt_watchlist_add(c->db, &alice, fd, cfd, "Stadium list", 0.5, &c->w, err, sizeof(err)), 0);
	close(fd);
	close(cfd);
	CHECK(strcmp(c->w.id, "7") == 0);
	CHECK(c->w.threshold > 0.4999 && c->w.threshold < 0.5001);
	CHECK_EQ_INT(c->w.subjects, 3);
	CHECK_EQ_INT(c->w.state, MGMT_WATCHLIST_LIVE);
	CHECK_EQ_INT(strlen(c->w.sha256), 64);
	CHECK(c->w.has_faces);
	CHECK(exists(c->w.path));
	snprintf(c->faces_path, sizeof(c->faces_path), "%.*s.faces", (int)strlen(c->w.path) - 4, c->w.path);
	CHECK(exists(c->faces_path));
	CHECK_EQ_INT(mgmt_watchlist_subjects(c->db, "7", 100, count_subject, &n), 3);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(mgmt_watchlist_face_get(c->db, "7", c->w.sha256, "S-1", c->key_path, jpeg, sizeof(jpeg), &jlen), 0);
	CHECK_EQ_INT(jlen, 6);
	CHECK(jpeg[2] == 9);
	CHECK_EQ_INT(mgmt_watchlist_face_get(c->db, "7", c->w.sha256, "S-2", c->key_path, jpeg, sizeof(jpeg), &jlen), -ENOENT);
	/* Only by the seal of the very watchlist: any other seal is not this watchlist's crops. */
	CHECK_EQ_INT(mgmt_watchlist_face_get(c->db, "7", "00", "S-1", c->key_path, jpeg, sizeof(jpeg), &jlen), -ESTALE);
	/* The same id twice is refused, so alerts and deployments name one file. */
	fd = test_wl_file(7, 0.5f, 2, false);
	CHECK_EQ_INT(mgmt_watchlist_add(c->db, &alice, fd, -1, "Stadium list again", 0, &c->w, err, sizeof(err)), -EEXIST);
	close(fd);
}

/* Invariant 2: a deployment names a watchlist vigild holds, by its seal; anything else is refused. */
static void wrong_seal_refused(struct wl_case *c)
{
	static const char *const unheld[] = { "8" }, *const seal_other[] = { "0000" };
	struct mgmt_deployment_request bad = *c->req;
	char err[256];
	int64_t id = 0;

	bad.watchlists = unheld;
	CHECK_EQ_INT(mgmt_deployment_create(c->db, &alice, &bad, &id, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "holds no watchlist 8") != NULL);
	bad = *c->req;
	bad.seals = seal_other;
	CHECK_EQ_INT(mgmt_deployment_create(c->db, &alice, &bad, &id, err, sizeof(err)), -EBADMSG);
	bad.seals = NULL;
	CHECK_EQ_INT(mgmt_deployment_create(c->db, &alice, &bad, &id, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(id, 0);
}

/* In use by an authorised deployment, then an active one: removal refused. */
static void in_use_by_deployment(struct wl_case *c)
{
	char err[256];

	CHECK_EQ_INT(mgmt_deployment_create(c->db, &alice, c->req, &c->dep, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_authorise(c->db, &carol, c->dep, true, "Proportionate", err, sizeof(err)), 0);
	int64_t other = 0;
	CHECK_EQ_INT(mgmt_deployment_create(c->db, &alice, c->req, &other, err, sizeof(err)), -EBUSY); /* specific to one */
	CHECK(strstr(err, "specific to one deployment") != NULL);
	CHECK_EQ_INT(mgmt_watchlist_remove(c->db, &alice, "7", false, "not needed", err, sizeof(err)), -EBUSY);
	CHECK(strstr(err, "in use by deployment") != NULL);
	CHECK_EQ_INT(mgmt_deployment_start(c->db, &alice, c->dep, (int64_t)time(NULL), err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_watchlist_remove(c->db, &alice, "7", true, "not needed", err, sizeof(err)), -EBUSY);
}

/* The public record by hour: faces scanned now, an alert now, reviewed. */
static void public_record_by_hour(struct wl_case *c)
{
	char err[256];

	CHECK_EQ_INT(mgmt_deployment_add_scanned(c->db, c->dep, 40), 0);
	struct mgmt_alert a = { .deployment = c->dep, .pts = 90000, .track = 1, .value = 0.41, .threshold = 0.5 };
	snprintf(a.camera, sizeof(a.camera), "cam1");
	snprintf(a.subject, sizeof(a.subject), "S-1");
	snprintf(a.watchlist, sizeof(a.watchlist), "7");
	snprintf(a.metric, sizeof(a.metric), "l2");
	/* An alert names the seal it matched; one the authorisation did not bind is refused. */
	snprintf(a.watchlist_seal, sizeof(a.watchlist_seal), "%s", "ab");
	CHECK_EQ_INT(mgmt_alert_raise(c->db, &alice, &a), -EPERM);
	a.watchlist_seal[0] = '\0';
	CHECK_EQ_INT(mgmt_alert_raise(c->db, &alice, &a), -EPERM);
	snprintf(a.watchlist_seal, sizeof(a.watchlist_seal), "%s", c->w.sha256);
	CHECK_EQ_INT(mgmt_alert_raise(c->db, &alice, &a), 0);
	struct mgmt_alert b = a;
	CHECK_EQ_INT(mgmt_alert_raise(c->db, &alice, &b), 0);
	snprintf(b.evidence, sizeof(b.evidence), "store:deployment/1/segment/0@0+100#1");
	struct mgmt_alert_outcome_todo todo[4];
	CHECK_EQ_INT(mgmt_alert_outcome_pending(c->db, todo, 4), 0);
	CHECK_EQ_INT(mgmt_alert_review(c->db, &alice, a.id, true, "Same person", err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_alert_outcome_pending(c->db, todo, 4), 1);
	CHECK_EQ_INT(todo[0].alert, a.id);
	CHECK_EQ_INT(todo[0].outcome, MGMT_ALERT_CONFIRMED);
	CHECK_EQ_INT(mgmt_alert_outcome_applied(c->db, a.id), 0);
	CHECK_EQ_INT(mgmt_alert_outcome_pending(c->db, todo, 4), 0);
	struct mgmt_transparency_hour hours[8];
	int nh = mgmt_deployment_transparency_hours(c->db, c->dep, hours, 8);
	/* The window's hours, from the window itself: the same answer at any minute of any hour. */
	CHECK_EQ_INT(nh, (c->req->end_s - 1) / 3600 - c->req->start_s / 3600 + 1);
	int64_t now_h = (int64_t)time(NULL) / 3600 * 3600;
	uint64_t faces = 0, alerts = 0, confirmed = 0, unreviewed = 0;
	for (int i = 0; i < nh; i++) {
		CHECK_EQ_INT(hours[i].hour_s % 3600, 0);
		if (hours[i].hour_s == now_h) {
			faces = hours[i].faces_scanned, alerts = hours[i].alerts;
			confirmed = hours[i].confirmed, unreviewed = hours[i].unreviewed;
		}
	}
	CHECK_EQ_INT(faces, 40);
	CHECK_EQ_INT(alerts, 2);
	CHECK_EQ_INT(confirmed, 1);
	CHECK_EQ_INT(unreviewed, 1);
	CHECK_EQ_INT(mgmt_deployment_transparency_hours(c->db, 999, hours, 8), -ENOENT);
}

/* The deployment's stop purges the files; the record stays, and the id is spent. */
static void stop_purges(struct wl_case *c)
{
	char err[256];
	uint8_t jpeg[64];
	size_t jlen = 0;
	int64_t other = 0;
	int n = 0;

	CHECK_EQ_INT(mgmt_deployment_stop(c->db, &alice, c->dep, "match over", mgmt_watchlist_purge_hook, c->db, err,
					  sizeof(err)),
		     0);
	/* The descriptors are gone; the encrypted enrolment crops stay while alerts need them (one
	 * unreviewed, one confirmed within its retention): the reviewer still sees the right face. */
	CHECK(!exists(c->w.path));
	CHECK(exists(c->faces_path));
	CHECK_EQ_INT(mgmt_watchlist_get(c->db, "7", &c->w), 0);
	CHECK_EQ_INT(c->w.state, MGMT_WATCHLIST_PURGED);
	CHECK(strcmp(c->w.ended_by, "vigild") == 0);
	CHECK_EQ_INT(mgmt_watchlist_subjects(c->db, "7", 100, count_subject, &n), -ESTALE);
	CHECK_EQ_INT(mgmt_watchlist_face_get(c->db, "7", c->w.sha256, "S-1", c->key_path, jpeg, sizeof(jpeg), &jlen), 0);
	CHECK_EQ_INT(mgmt_watchlist_faces_release(c->db), 0);
	CHECK(exists(c->faces_path));
	/* Once every alert is reviewed and the confirmed one's evidence is past retention, they go. */
	CHECK_EQ_INT(raw_sql("UPDATE alerts SET outcome = 2, reviewed_by = 'sgt.alice', reviewed_ns = 1 WHERE outcome = 0"), 0);
	CHECK_EQ_INT(mgmt_watchlist_faces_release(c->db), 0); /* the confirmed one is still retained */
	CHECK_EQ_INT(raw_sql("UPDATE alerts SET reviewed_ns = 1"), 0);
	CHECK_EQ_INT(mgmt_watchlist_faces_release(c->db), 1);
	CHECK(!exists(c->faces_path));
	CHECK_EQ_INT(mgmt_watchlist_face_get(c->db, "7", c->w.sha256, "S-1", c->key_path, jpeg, sizeof(jpeg), &jlen), -ESTALE);
	CHECK_EQ_INT(mgmt_watchlist_remove(c->db, &alice, "7", false, "again", err, sizeof(err)), -ESTALE);
	CHECK_EQ_INT(mgmt_deployment_create(c->db, &alice, c->req, &other, err, sizeof(err)), -ESTALE); /* purged: import again */
	/* An unregistered watchlist id has nothing here to purge. */
	CHECK_EQ_INT(mgmt_watchlist_purge_hook(c->db, c->dep, "wl-elsewhere"), 0);
}

/* A watchlist no deployment names can be removed by hand: the bytes go, the record stays. */
static void remove_by_hand(struct wl_case *c)
{
	char err[256];
	int fd;

	fd = test_wl_file(8, 0.6f, 2, false);
	CHECK_EQ_INT(mgmt_watchlist_add(c->db, &alice, fd, -1, "Spare", 0, &c->w, err, sizeof(err)), 0);
	close(fd);
	CHECK_EQ_INT(mgmt_watchlist_remove(c->db, &dave, "8", false, "tidy", err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_watchlist_remove(c->db, &alice, "8", false, "", err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(mgmt_watchlist_remove(c->db, &alice, "8", false, "no longer needed", err, sizeof(err)), 0);
	CHECK(!exists(c->w.path));
	CHECK_EQ_INT(mgmt_watchlist_get(c->db, "8", &c->w), 0);
	CHECK_EQ_INT(c->w.state, MGMT_WATCHLIST_REMOVED);
	CHECK_EQ_INT(mgmt_watchlist_remove(c->db, &alice, "9", false, "x", err, sizeof(err)), -ENOENT);
}

/* Over the action table without a socket: no descriptor came with the request. */
static void over_action_table(struct wl_case *c)
{
	struct mgmt_ctl *ctl = NULL;
	char err[256], *reply = NULL;
	static const char add_req[] = "{\"verb\":\"watchlist.add\",\"args\":{\"name\":\"x\"}}";
	static const char show_req[] = "{\"verb\":\"watchlist.show\",\"args\":{\"id\":\"7\"}}";
	CHECK_EQ_INT(mgmt_ctl_open(&ctl, c->db, NULL, NULL, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_ctl_handle(ctl, &alice, add_req, strlen(add_req), &reply), -EBADF);
	CHECK(reply && strstr(reply, "passed with the request") != NULL);
	free(reply);
	CHECK_EQ_INT(mgmt_ctl_handle(ctl, &dave, show_req, strlen(show_req), &reply), 0);
	CHECK(reply && strstr(reply, "\"state\":\"purged\"") != NULL && strstr(reply, "subject_ids") == NULL);
	free(reply);
	mgmt_ctl_close(&ctl);
}

int main(void)
{
	static const char *const lists[] = { "7" };
	const char *seals[1];
	struct mgmt_deployment_request req = {
		.name = "Stadium", .use_case = MGMT_USE_CRIME_HOTSPOT, .location = "Gate 4",
		.start_s = (int64_t)time(NULL) - 60, .end_s = (int64_t)time(NULL) + 2 * 3600,
		.justification = "Violence at the last three fixtures", .watchlists = lists, .seals = seals, .n_watchlists = 1,
	};
	struct wl_case c = { .req = &req };
	struct mgmt_audit_report r;
	char err[256];

	test_db_fresh();
	CHECK_EQ_INT(mgmt_db_open(&c.db, test_db_path, err, sizeof(err)), 0);
	if (!c.db)
		return 1;
	CHECK_EQ_INT(mgmt_db_schema_version(c.db) >= 3, 1);
	snprintf(c.key_path, sizeof(c.key_path), "%s/appliance.key", test_dir);

	register_watchlist(&c);
	seals[0] = c.w.sha256; /* the requester names watchlist 7 by the seal they reviewed */
	wrong_seal_refused(&c);
	in_use_by_deployment(&c);
	public_record_by_hour(&c);
	stop_purges(&c);
	remove_by_hand(&c);
	over_action_table(&c);

	CHECK_EQ_INT(mgmt_audit_verify(c.db, &r), 0);
	CHECK_EQ_INT(count_rows("SELECT COUNT(*) FROM audit WHERE action = 'watchlist.purge' AND object = 'watchlist/7'"), 1);
	CHECK_EQ_INT(count_rows("SELECT COUNT(*) FROM audit WHERE action = 'watchlist.remove.refused'"), 1);
	mgmt_db_close(&c.db);
	test_db_cleanup();
	return vg_test_exit();
}
