/*
 * The matcher returns exactly what brute force returns: on random data, on duplicate vectors, on
 * exact ties (small-integer vectors), at every d class, for L2 and cosine, with 1 or 3 shards,
 * 1 or 2 threads, each kernel; and after removes, a watchlist removal and a purge. Thresholds
 * decide `pass` on the reported value, which is the true metric to float precision.
 */
#include <errno.h>
#include <stdio.h>

#include "match.h"
#include "match_brute.h"
#include "vg_test.h"

#define N 300
#define NQ 12

static float vecs[N][MATCH_D_MAX], stored[N][MATCH_D_MAX], qs[NQ * MATCH_D_MAX], qstore[NQ * MATCH_D_MAX];
static char names[N][16];

static void check_queries(struct match_ctx *ctx, struct brute_entry *be, unsigned d, enum match_metric m,
			  const char *what)
{
	struct match_result res[NQ];
	unsigned k = 1 + (d / 16) % MATCH_K_MAX; /* a different k per d, 2..8 */

	for (unsigned kk = 1; kk <= MATCH_K_MAX; kk += k) {
		CHECK_EQ_INT(match_query(ctx, qs, NQ, kk, res), NQ);
		for (unsigned j = 0; j < NQ; j++) {
			unsigned idx[MATCH_K_MAX];
			unsigned got = brute_topk(be, N, qstore + (size_t)j * d, d, m, kk, idx);

			CHECK_EQ_INT(res[j].n, got);
			for (unsigned i = 0; i < got && i < res[j].n; i++) {
				const float *q = qs + (size_t)j * d, *x = vecs[idx[i]];
				double s = 0, nq = 0, nx = 0, want;

				for (unsigned t = 0; t < d; t++) {
					s += m == MATCH_METRIC_L2 ? ((double)q[t] - x[t]) * ((double)q[t] - x[t]) : (double)q[t] * x[t];
					nq += (double)q[t] * q[t];
					nx += (double)x[t] * x[t];
				}
				want = m == MATCH_METRIC_L2 ? sqrt(s) : s / sqrt(nq * nx);
				if (strcmp(res[j].hit[i].subject, names[idx[i]]) != 0 || res[j].hit[i].seq != be[idx[i]].seq) {
					fprintf(stderr, "%s: query %u rank %u: got %s seq %llu, brute force %s seq %llu\n", what,
						j, i, res[j].hit[i].subject, (unsigned long long)res[j].hit[i].seq,
						names[idx[i]], (unsigned long long)be[idx[i]].seq);
					vg_test_failures++;
				}
				if (fabs(res[j].hit[i].value - want) > 1e-4 * (1 + fabs(want))) {
					fprintf(stderr, "%s: value %g, want %g\n", what, res[j].hit[i].value, want);
					vg_test_failures++;
				}
				/* watchlist 1 threshold: L2 <= 10 / cosine >= 0.2; watchlist 2: nothing passes */
				bool pass = idx[i] % 2 == 0 && (m == MATCH_METRIC_L2 ? res[j].hit[i].value <= 10.0f
										 : res[j].hit[i].value >= 0.2f);
				CHECK(res[j].hit[i].pass == pass);
			}
		}
	}
}

static void run(unsigned d, enum match_metric m, enum match_kernel kern, unsigned shards, unsigned threads, int ties)
{
	struct match_db_conf conf = { .d = d, .metric = m, .n_shards = shards, .model = "test", .kernel = kern };
	struct match_db *db = NULL;
	struct match_ctx *ctx = NULL;
	struct brute_entry be[N];
	struct match_entry e[N];
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (d * 31 + m * 7 + (unsigned)ties);
	char what[128], err[200];

	snprintf(what, sizeof(what), "d=%u metric=%d kernel=%d shards=%u threads=%u ties=%d", d, (int)m, (int)kern,
		 shards, threads, ties);
	for (unsigned i = 0; i < N; i++) {
		for (unsigned k = 0; k < d; k++) {
			float r = brute_randf(&seed);

			/* small integers: many exact ties, and exact fp32 arithmetic */
			vecs[i][k] = ties ? (float)(int)(r * 2.5f) : r;
		}
		if (ties)
			vecs[i][i % d] += 1.0f; /* never the zero vector (cosine refuses it) */
		if (i % 10 == 9)
			memcpy(vecs[i], vecs[i - 5], d * sizeof(float)); /* duplicates of earlier entries */
		snprintf(names[i], sizeof(names[i]), "s%u", i / 2);  /* two entries per subject */
		if (m == MATCH_METRIC_COSINE)
			brute_normalize(vecs[i], d, stored[i]);
		else
			memcpy(stored[i], vecs[i], d * sizeof(float));
		be[i] = (struct brute_entry){ .v = stored[i], .seq = i + 1, .live = 1 };
		e[i] = (struct match_entry){ .subject = names[i], .watchlist = 1 + i % 2, .desc = vecs[i] };
	}
	for (unsigned j = 0; j < NQ; j++) {
		float *q = qs + (size_t)j * d;

		if (j < 3)
			memcpy(q, vecs[j * 7], d * sizeof(float)); /* exactly an enrolled vector */
		else
			for (unsigned k = 0; k < d; k++)
				q[k] = ties ? (float)(int)(brute_randf(&seed) * 2.5f) + (k == 0) : brute_randf(&seed);
		if (m == MATCH_METRIC_COSINE)
			brute_normalize(q, d, qstore + (size_t)j * d);
		else
			memcpy(qstore + (size_t)j * d, q, d * sizeof(float));
	}
	if (match_db_open(&db, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: open: %s\n", what, err);
		vg_test_failures++;
		return;
	}
	CHECK_EQ_INT(match_watchlist_set(db, 1, m == MATCH_METRIC_L2 ? 10.0f : 0.2f), 0);
	CHECK_EQ_INT(match_watchlist_set(db, 2, m == MATCH_METRIC_L2 ? -1.0f : 2.0f), 0);
	CHECK_EQ_INT(match_ctx_open(&ctx, db, threads, NQ), 0);
	/* Enrol in uneven batches, so that shards hold several segments and merge some of them. */
	for (unsigned i = 0, b = 1; i < N; i += b, b = b * 3 + 1)
		CHECK_EQ_INT(match_enroll(db, e + i, i + b > N ? N - i : b, err, sizeof(err)), i + b > N ? N - i : b);
	check_queries(ctx, be, d, m, what);

	/* remove subjects: both of their entries go */
	for (unsigned s = 0; s < N / 2; s += 3) {
		char name[16];

		snprintf(name, sizeof(name), "s%u", s);
		CHECK_EQ_INT(match_remove_subject(db, name), 2);
		be[2 * s].live = be[2 * s + 1].live = 0;
	}
	CHECK_EQ_INT(match_remove_subject(db, "nobody"), 0);
	check_queries(ctx, be, d, m, what);

	/* remove watchlist 2: only odd entries */
	int left = 0;

	for (unsigned i = 1; i < N; i += 2)
		left += be[i].live;
	CHECK_EQ_INT(match_remove_watchlist(db, 2), left);
	CHECK_EQ_INT(match_remove_watchlist(db, 2), -ENOENT);
	for (unsigned i = 1; i < N; i += 2)
		be[i].live = 0;
	check_queries(ctx, be, d, m, what);

	struct match_stats st;

	int live = 0;

	for (unsigned i = 0; i < N; i++)
		live += be[i].live;
	match_stats_get(db, &st);
	CHECK_EQ_INT(st.entries, live);
	CHECK(live > 0);
	CHECK(st.queries > 0);
	CHECK_EQ_INT(match_purge(db), 0);
	for (unsigned i = 0; i < N; i++)
		be[i].live = 0;
	check_queries(ctx, be, d, m, what); /* empty: n = 0 for every query */
	match_stats_get(db, &st);
	CHECK_EQ_INT(st.entries, 0);
	CHECK_EQ_INT(st.bytes, 0);
	match_ctx_close(&ctx);
	CHECK(ctx == NULL);
	match_db_close(&db);
	CHECK(db == NULL);
}

int main(void)
{
	static const unsigned ds[] = { 16, 128, 512, 1024 };
	enum match_kernel kernels[] = { MATCH_KERNEL_REF, MATCH_KERNEL_AVX512 };

	for (unsigned di = 0; di < 4; di++)
		for (int m = 0; m < 2; m++)
			for (unsigned ki = 0; ki < 2; ki++) {
				if (!match_kernel_supported(kernels[ki])) {
					fprintf(stderr, "kernel %u not supported here: skipped\n", ki);
					continue;
				}
				for (int ties = 0; ties < (ds[di] < 1024 ? 2 : 1); ties++) { /* keeps tsan < 15 s */
					run(ds[di], (enum match_metric)m, kernels[ki], 1, 1, ties);
					if (ds[di] <= 128)
						run(ds[di], (enum match_metric)m, kernels[ki], 3, 2, ties);
				}
			}
	return vg_test_exit();
}
