/*
 * The watchlist file: a round trip loads every entry exactly; every truncation, an extra byte,
 * every single flipped byte, and each corrupt field behind a valid checksum is refused with a
 * one-line reason, and leaves the matcher exactly as it was (nothing half-loaded).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match.h"
#include "vg_test.h"

#define D 16
#define N 3

static struct match_db *db;
static struct match_ctx *ctx;

static uint64_t entries(void)
{
	struct match_stats st;

	match_stats_get(db, &st);
	return st.entries;
}

static void reseal(uint8_t *buf, size_t len)
{
	crypto_hash_sha256(buf + len - 32, buf, len - 32);
}

/* Corrupt one field, fix the checksum, expect a refusal naming REASON. */
static void refuse_field(const uint8_t *good, size_t len, size_t off, const void *val, size_t vlen, const char *reason)
{
	uint8_t *b = malloc(len);
	char err[256] = "";

	memcpy(b, good, len);
	memcpy(b + off, val, vlen);
	reseal(b, len);
	int rc = match_load(db, b, len, err, sizeof(err));

	CHECK(rc == -EBADMSG || rc == -EINVAL);
	if (!strstr(err, reason)) {
		fprintf(stderr, "offset %zu: reason \"%s\", expected \"%s\"\n", off, err, reason);
		vg_test_failures++;
	}
	CHECK(strchr(err, '\n') == NULL);
	CHECK_EQ_INT(entries(), N);
	free(b);
}

int main(void)
{
	struct match_db_conf conf = { .d = D, .metric = MATCH_METRIC_L2, .n_shards = 2, .model = "face-api-1.7.15" };
	struct match_watchlist_def wl[2] = { { 1, 0.6f }, { 5, 0.4f } };
	float v[N][D];
	struct match_entry e[N];
	struct match_result res[N];
	uint8_t *buf;
	void *vb;
	size_t len;
	char err[256];

	for (unsigned i = 0; i < N; i++) {
		for (unsigned k = 0; k < D; k++)
			v[i][k] = (float)((i * 7 + k * 3) % 11) / 10.0f;
		e[i] = (struct match_entry){ .subject = i == 2 ? "0123456789012345678901234567890123456789012345678901234567890123" : "someone",
					     .watchlist = wl[i % 2].id, .desc = v[i] };
	}
	CHECK_EQ_INT(match_file_encode("face-api-1.7.15", D, MATCH_METRIC_L2, wl, 2, e, N, &vb, &len, err, sizeof(err)), 0);
	buf = vb;
	CHECK_EQ_INT(len, 64 + 2 * 8 + N * (64 + 4 + D * 4) + 32);
	CHECK_EQ_INT(match_db_open(&db, &conf, err, sizeof(err)), 0);
	CHECK_EQ_INT(match_ctx_open(&ctx, db, 1, N), 0);

	/* refusals of the whole file before anything is loaded */
	for (size_t cut = 0; cut < len; cut++) {
		err[0] = 0;
		CHECK_EQ_INT(match_load(db, buf, cut, err, sizeof(err)), -EBADMSG);
		CHECK(err[0] != 0);
	}
	CHECK_EQ_INT(entries(), 0);

	/* round trip */
	CHECK_EQ_INT(match_load(db, buf, len, err, sizeof(err)), N);
	CHECK_EQ_INT(entries(), N);
	CHECK_EQ_INT(match_query(ctx, &v[0][0], N, 1, res), N);
	for (unsigned i = 0; i < N; i++) {
		CHECK(strcmp(res[i].hit[0].subject, e[i].subject) == 0);
		CHECK_EQ_INT(res[i].hit[0].watchlist, e[i].watchlist);
		CHECK(res[i].hit[0].value == 0.0f);
		CHECK(res[i].hit[0].pass);
	}

	/* one extra byte, every flipped byte */
	uint8_t *big = malloc(len + 1);

	memcpy(big, buf, len);
	big[len] = 0;
	CHECK_EQ_INT(match_load(db, big, len + 1, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "truncated or oversized") != NULL);
	free(big);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x20;
		CHECK(match_load(db, buf, len, err, sizeof(err)) < 0);
		buf[i] ^= 0x20;
	}
	CHECK_EQ_INT(entries(), N);

	/* bad fields behind a valid checksum */
	uint32_t u;
	float f;
	size_t ent0 = 64 + 16, es = 64 + 4 + D * 4;

	u = 2;
	refuse_field(buf, len, 8, &u, 4, "version 2");
	refuse_field(buf, len, 16, "other-model", 12, "is for model other-model");
	refuse_field(buf, len, 16, "\0", 1, "model id is empty");
	memset(err, 'x', 32);
	refuse_field(buf, len, 16, err, 32, "not terminated");
	u = 32;
	refuse_field(buf, len, 48, &u, 4, "truncated or oversized");  /* d 32: the size no longer fits */
	u = 17;
	refuse_field(buf, len, 48, &u, 4, "out of range");
	u = 1;
	refuse_field(buf, len, 52, &u, 4, "metric 1");
	u = 0xffffffffu;
	refuse_field(buf, len, 60, &u, 4, "out of range");
	f = NAN;
	refuse_field(buf, len, 64 + 4, &f, 4, "not finite");
	u = 1;
	refuse_field(buf, len, 64 + 8, &u, 4, "listed twice");
	refuse_field(buf, len, ent0, "\0", 1, "empty subject");
	refuse_field(buf, len, ent0 + 20, "z", 1, "bytes after its NUL");
	u = 3;
	refuse_field(buf, len, ent0 + es + 64, &u, 4, "watchlist 3 is not in the file");
	f = INFINITY;
	refuse_field(buf, len, ent0 + 2 * es + 68 + 4 * 5, &f, 4, "entry 2: descriptor");
	f = NAN;
	refuse_field(buf, len, ent0 + 68, &f, 4, "entry 0: descriptor");

	/* from a file, and a missing file */
	char dir[256], path[300] = "";
	int fd = -1;

	if (vg_test_tmpdir("wl", dir, sizeof(dir))) {
		snprintf(path, sizeof(path), "%s/watchlist", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	CHECK(fd >= 0 && write(fd, buf, len) == (ssize_t)len);
	close(fd);
	CHECK_EQ_INT(match_load_file(db, path, err, sizeof(err)), N);
	CHECK_EQ_INT(entries(), 2 * N);
	unlink(path);
	CHECK_EQ_INT(match_load_file(db, path, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, path) != NULL);
	rmdir(dir);

	/* a bad entry is refused by the encoder too */
	e[1].subject = "";
	CHECK_EQ_INT(match_file_encode("m", D, MATCH_METRIC_L2, wl, 2, e, N, &vb, &len, err, sizeof(err)), -EINVAL);

	free(buf);
	match_ctx_close(&ctx);
	match_db_close(&db);
	return vg_test_exit();
}
