/*
 * checkasm-style: every optimised kernel against the C reference on the same inputs: keys are
 * bit-identical (one fma chain in dimension order), so the hits, their order and their values are
 * equal, at every batch size from 1 to 37 (every tile height and tail), with tombstones and a
 * partial last block.
 */
#include <stdio.h>
#include <string.h>

#include "match.h"
#include "match_brute.h"
#include "vg_test.h"

#define N 2000
#define D 128
#define NQ 37

static float vecs[N * D], qs[NQ * D];
static char names[N][16];

int main(void)
{
	struct match_db *db[2] = { NULL, NULL };
	struct match_ctx *ctx[2] = { NULL, NULL };
	enum match_kernel kern[2] = { MATCH_KERNEL_REF, MATCH_KERNEL_AVX512 };
	struct match_entry e[N];
	static struct match_result res[2][NQ];
	uint64_t seed = 42;
	char err[200];

	if (!match_kernel_supported(MATCH_KERNEL_AVX512)) {
		fprintf(stderr, "no AVX-512 on this CPU: nothing to compare\n");
		return VG_TEST_SKIP;
	}
	for (unsigned i = 0; i < N * D; i++)
		vecs[i] = brute_randf(&seed) * 3.0f;
	for (unsigned i = 0; i < NQ * D; i++)
		qs[i] = brute_randf(&seed) * 3.0f;
	for (unsigned i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "p%u", i);
		e[i] = (struct match_entry){ .subject = names[i], .watchlist = 1, .desc = vecs + (size_t)i * D };
	}
	for (int m = 0; m < 2; m++) {
		for (int i = 0; i < 2; i++) {
			struct match_db_conf conf = { .d = D, .metric = (enum match_metric)m, .n_shards = 2, .model = "t",
						      .kernel = kern[i] };

			CHECK_EQ_INT(match_db_open(&db[i], &conf, err, sizeof(err)), 0);
			CHECK_EQ_INT(match_watchlist_set(db[i], 1, 0.0f), 0);
			CHECK_EQ_INT(match_enroll(db[i], e, N - 7, err, sizeof(err)), N - 7); /* partial last block */
			for (unsigned s = 0; s < N; s += 5)
				match_remove_subject(db[i], names[s]);
			CHECK_EQ_INT(match_ctx_open(&ctx[i], db[i], 1, NQ), 0);
		}
		CHECK(strcmp(match_kernel_name(db[1]), "avx512") == 0);
		for (unsigned nq = 1; nq <= NQ; nq += (nq < 8 ? 1 : 7)) {
			for (int i = 0; i < 2; i++)
				CHECK_EQ_INT(match_query(ctx[i], qs, nq, MATCH_K_MAX, res[i]), nq);
			for (unsigned j = 0; j < nq; j++) {
				CHECK_EQ_INT(res[0][j].n, MATCH_K_MAX);
				CHECK_EQ_INT(res[1][j].n, res[0][j].n);
				for (unsigned h = 0; h < res[0][j].n; h++) {
					CHECK_EQ_INT(res[1][j].hit[h].seq, res[0][j].hit[h].seq);
					CHECK(res[1][j].hit[h].value == res[0][j].hit[h].value);
					CHECK(res[0][j].hit[h].seq % 5 != 1); /* removed subjects never come back */
				}
			}
		}
		for (int i = 0; i < 2; i++) {
			match_ctx_close(&ctx[i]);
			match_db_close(&db[i]);
		}
	}
	return vg_test_exit();
}
