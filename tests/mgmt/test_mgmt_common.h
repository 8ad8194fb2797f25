/* Helpers for the mgmt tests: a fresh database path in a temp dir, and raw SQL on it. */
#ifndef TEST_MGMT_COMMON_H
#define TEST_MGMT_COMMON_H

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt.h"
#include "vg_test.h"

#include <sys/stat.h>

#include "vg_base.h"

static char test_dir[200] VG_MAYBE_UNUSED;
static char test_db_path[256] VG_MAYBE_UNUSED;

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

static inline void test_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A matcher file (match.h's format) enrolled with MODEL, d = 16, N subjects "S-0".."S-<n-1>", in a
 * memfd. CORRUPT flips a byte. */
static inline int test_wl_file_of(const char *model, uint32_t id, float threshold, unsigned n, bool corrupt)
{
	size_t entry = 64 + 4 + 16 * 4, len = 64 + 8 + n * entry + 32;
	uint8_t *b = calloc(1, len);
	int fd = memfd_create("wl", MFD_CLOEXEC);

	memcpy(b, "VGWLIST\0", 8);
	test_put32(b + 8, 1);
	test_put32(b + 12, 64);
	memcpy(b + 16, model, strnlen(model, 31));
	test_put32(b + 48, 16);
	test_put32(b + 52, 0);
	test_put32(b + 56, 1);
	test_put32(b + 60, n);
	test_put32(b + 64, id);
	memcpy(b + 68, &threshold, 4);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = b + 72 + i * entry;
		snprintf((char *)e, 64, "S-%u", i);
		test_put32(e + 64, id);
		for (int k = 0; k < 16; k++) {
			float v = (float)(i + k) / 16.0f;
			memcpy(e + 68 + 4 * k, &v, 4);
		}
	}
	crypto_hash_sha256(b + len - 32, b, len - 32);
	if (corrupt)
		b[80] ^= 1;
	if (write(fd, b, len) != (ssize_t)len)
		abort();
	free(b);
	return fd;
}

/* test_wl_file_of() by the built-in model's id. */
static inline int test_wl_file(uint32_t id, float threshold, unsigned n, bool corrupt)
{
	return test_wl_file_of("face-api-1.7.15", id, threshold, n, corrupt);
}

/*
 * Watchlist ID (N subjects) registered in custody by WHO, as a deployment names it: its seal (hex)
 * into SEAL. The file is made by test_wl_file(). 0 or the -errno of mgmt_watchlist_add.
 */
static inline int test_wl_register(struct mgmt_db *db, const struct mgmt_actor *who, uint32_t id, unsigned n,
				   char seal[65])
{
	struct mgmt_watchlist w;
	char err[256], name[32];
	int fd = test_wl_file(id, 0.5f, n, false), rc;

	snprintf(name, sizeof(name), "list %u", id);
	rc = mgmt_watchlist_add(db, who, fd, -1, name, 0, &w, err, sizeof(err));
	close(fd);
	if (rc == 0)
		memcpy(seal, w.sha256, 65);
	else
		fprintf(stderr, "test_wl_register(%u): %s\n", id, err);
	return rc;
}

/*
 * Watchlist ID in the custody of the vigild whose state is STATE_DIR, put there before that vigild
 * starts (as an admin would have), its seal into SEAL: what a daemon test's deployment names.
 */
static inline int test_wl_register_in(const char *state_dir, uint32_t id, char seal[65])
{
	static const struct mgmt_actor admin = { "root", 0, MGMT_ROLE_ADMIN };
	struct mgmt_db *db = NULL;
	char path[400], err[256];
	int rc;

	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/vigil.db", state_dir);
	rc = mgmt_db_open(&db, path, err, sizeof(err));
	if (rc == 0)
		rc = test_wl_register(db, &admin, id, 2, seal);
	mgmt_db_close(&db);
	return rc;
}

#endif
