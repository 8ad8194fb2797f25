/* Helpers for the mgmt tests: a fresh database path in a temp dir, and raw SQL on it. */
#ifndef TEST_MGMT_COMMON_H
#define TEST_MGMT_COMMON_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vg_test.h"

static char test_dir[200];
static char test_db_path[256];

static inline void test_db_fresh(void)
{
	if (!vg_test_tmpdir("mgmt", test_dir, sizeof(test_dir)))
		abort();
	snprintf(test_db_path, sizeof(test_db_path), "%s/vigil.db", test_dir);
}

static inline void test_db_cleanup(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", test_dir);
}

/* Run SQL on the database through a second, raw connection: what a tamperer with the file does. */
static inline int raw_sql(const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;
	int rc;

	if (sqlite3_open(test_db_path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "raw sql: %s\n", msg ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

#endif
