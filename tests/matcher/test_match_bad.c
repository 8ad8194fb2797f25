/*
 * Bad input is refused whole, with a one-line reason, and changes nothing stored: wrong d, NaN,
 * infinite and out-of-range values, zero vectors under cosine, bad subjects, unknown watchlists,
 * bad k and batch sizes; empty watchlists answer with no hits.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "match.h"
#include "vg_test.h"

#define D 32

int main(void)
{
	struct match_db_conf conf = { .d = D, .metric = MATCH_METRIC_COSINE, .n_shards = 2, .model = "m" };
	struct match_db *db = NULL;
	struct match_ctx *ctx = NULL;
	struct match_result res[4];
	struct match_stats st;
	float good[D], bad[D], zero[D] = { 0 };
	char err[256];

	/* wrong d, shards, model */
	for (unsigned d = 0; d <= 2048; d += 8) {
		struct match_db_conf c = conf;

		c.d = d;
		int rc = match_db_open(&db, &c, err, sizeof(err));

		CHECK_EQ_INT(rc, d >= 16 && d <= 1024 && d % 16 == 0 ? 0 : -EINVAL);
		if (rc < 0)
			CHECK(strchr(err, '\n') == NULL && strlen(err) > 0);
		match_db_close(&db);
	}
	conf.n_shards = MATCH_SHARDS_MAX + 1;
	CHECK_EQ_INT(match_db_open(&db, &conf, err, sizeof(err)), -EINVAL);
	conf.n_shards = 2;
	conf.model = "";
	CHECK_EQ_INT(match_db_open(&db, &conf, err, sizeof(err)), -EINVAL);
	conf.model = "m";
	CHECK(db == NULL);

	CHECK_EQ_INT(match_db_open(&db, &conf, err, sizeof(err)), 0);
	CHECK_EQ_INT(match_ctx_open(&ctx, db, 1, 4), 0);
	for (unsigned k = 0; k < D; k++)
		good[k] = (float)(k + 1);

	/* empty matcher, and a watchlist with no entries: no hits */
	CHECK_EQ_INT(match_query(ctx, good, 1, 3, res), 1);
	CHECK_EQ_INT(res[0].n, 0);
	CHECK_EQ_INT(match_watchlist_set(db, 7, 0.5f), 0);
	CHECK_EQ_INT(match_watchlist_set(db, 8, NAN), -EINVAL);
	CHECK_EQ_INT(match_query(ctx, good, 1, 3, res), 1);
	CHECK_EQ_INT(res[0].n, 0);

	struct match_entry e = { .subject = "alice", .watchlist = 7, .desc = good };

	CHECK_EQ_INT(match_enroll(db, &e, 1, err, sizeof(err)), 1);

	/* each bad value, at each position class, is refused and nothing is enrolled */
	const float bads[] = { NAN, INFINITY, -INFINITY, 2e16f, -1e30f };

	for (unsigned b = 0; b < 5; b++)
		for (unsigned pos = 0; pos < D; pos += 7) {
			struct match_entry two[2] = { e, e };

			memcpy(bad, good, sizeof(bad));
			bad[pos] = bads[b];
			two[1].desc = bad;
			two[1].subject = "bob";
			err[0] = 0;
			CHECK_EQ_INT(match_enroll(db, two, 2, err, sizeof(err)), -EINVAL);
			CHECK(strstr(err, "entry 1") != NULL);
			CHECK_EQ_INT(match_query(ctx, bad, 1, 1, res), -EINVAL);
		}
	e.desc = zero;
	CHECK_EQ_INT(match_enroll(db, &e, 1, err, sizeof(err)), -EINVAL); /* zero vector under cosine */
	CHECK_EQ_INT(match_query(ctx, zero, 1, 1, res), -EINVAL);
	e.desc = good;
	e.subject = "";
	CHECK_EQ_INT(match_enroll(db, &e, 1, err, sizeof(err)), -EINVAL);
	e.subject = "0123456789012345678901234567890123456789012345678901234567890123456789";
	CHECK_EQ_INT(match_enroll(db, &e, 1, err, sizeof(err)), -EINVAL);
	e.subject = NULL;
	CHECK_EQ_INT(match_enroll(db, &e, 1, err, sizeof(err)), -EINVAL);
	e.subject = "carol";
	e.watchlist = 99;
	CHECK_EQ_INT(match_enroll(db, &e, 1, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "unknown watchlist 99") != NULL);
	CHECK_EQ_INT(match_remove_watchlist(db, 99), -ENOENT);
	CHECK_EQ_INT(match_remove_subject(db, "nobody"), 0);
	CHECK_EQ_INT(match_remove_subject(db, ""), -EINVAL);

	/* bad k and batch */
	CHECK_EQ_INT(match_query(ctx, good, 1, 0, res), -EINVAL);
	CHECK_EQ_INT(match_query(ctx, good, 1, MATCH_K_MAX + 1, res), -EINVAL);
	CHECK_EQ_INT(match_query(ctx, good, 5, 1, res), -EINVAL);
	CHECK_EQ_INT(match_ctx_open(&ctx, db, 0, 4), -EINVAL);

	/* what was stored is intact: alice, exactly */
	CHECK_EQ_INT(match_query(ctx, good, 1, 8, res), 1);
	CHECK_EQ_INT(res[0].n, 1);
	CHECK(strcmp(res[0].hit[0].subject, "alice") == 0);
	CHECK(fabsf(res[0].hit[0].value - 1.0f) < 1e-6f);
	CHECK(res[0].hit[0].pass);
	match_stats_get(db, &st);
	CHECK_EQ_INT(st.entries, 1);
	CHECK(st.refused >= 5 * 5 * 2 + 10);

	match_ctx_close(&ctx);
	match_db_close(&db);
	return vg_test_exit();
}
