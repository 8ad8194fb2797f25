/*
 * mgmt audit chain: entries survive a restart, and `verify` finds an edited, a deleted, a
 * reordered and a cut-off entry, each at the right sequence number. The append-only triggers
 * refuse ordinary UPDATE and DELETE. A database from a newer vigild is refused, not damaged.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../vg_test.h"
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

int main(void)
{
	struct mgmt_audit_report r;
	struct mgmt_db *db = NULL;
	char err[256];
	int64_t seq = 0;

	test_db_fresh();
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	if (!db)
		return 1;
	CHECK_EQ_INT(mgmt_db_schema_version(db), 4); /* every migration ran */
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
