/*
 * The matcher's scan on the GPU against the CPU matcher (match_query, AVX-512 where the CPU has
 * it, every core of the machine) on the same vectors, in the same run: queries per second at
 * batch 1, 32 and 256 for 16,384 and 131,072 entries of d 128, k 8, their ratio, and the GPU's
 * multiply-adds per second. Medians of 21 timed batches. Top-1 agreement is counted (it must be
 * all: the keys are bit-identical by construction). Skips (77) where there is no GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../matcher/match_brute.h"
#include "gpu_cuda.h"
#include "match.h"
#include "vg_clock.h"

#define D 128
#define K 8
#define RUNS 21

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t median(uint64_t *t)
{
	qsort(t, RUNS, sizeof(*t), cmp_u64);
	return t[RUNS / 2];
}

int main(void)
{
	static const size_t sizes[] = { 16384, 131072 };
	static const unsigned batches[] = { 1, 32, 256 };
	unsigned cores = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t s = 42;

	if (gpu_cuda_device_count() <= 0) {
		fprintf(stderr, "bench_cuda_match: no CUDA device here: skipped\n");
		return 77;
	}
	if (cores > MATCH_THREADS_MAX)
		cores = MATCH_THREADS_MAX;
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t n = sizes[si];
		float *rows = malloc(n * D * sizeof(float)), *q = malloc(256 * D * sizeof(float));
		struct match_entry *e = malloc(n * sizeof(*e));
		struct match_result *res = malloc(256 * sizeof(*res));
		uint32_t *idx = malloc(256 * K * sizeof(*idx));
		float *key = malloc(256 * K * sizeof(*key));
		unsigned got[256];
		struct match_db *db = NULL;
		struct match_ctx *ctx = NULL;
		struct gpu_cuda_gallery *g = NULL;
		char err[256];

		if (!rows || !q || !e || !res || !idx || !key)
			return 1;
		for (size_t i = 0; i < n * D; i++)
			rows[i] = brute_randf(&s) * 0.3f;
		for (size_t i = 0; i < 256 * D; i++)
			q[i] = brute_randf(&s) * 0.3f;
		struct match_db_conf mc = { .d = D, .metric = MATCH_METRIC_L2, .n_shards = cores, .model = "bench",
					    .kernel = MATCH_KERNEL_AUTO };
		if (match_db_open(&db, &mc, err, sizeof(err)) < 0 || match_watchlist_set(db, 1, 0.6f) < 0)
			return fprintf(stderr, "matcher: %s\n", err), 1;
		for (size_t i = 0; i < n; i++)
			e[i] = (struct match_entry){ "subject", 1, rows + i * D };
		if (match_enroll(db, e, (unsigned)n, err, sizeof(err)) != (int)n || match_ctx_open(&ctx, db, cores, 256) < 0)
			return fprintf(stderr, "matcher: %s\n", err), 1;
		if (gpu_cuda_gallery_create(&g, 0, D, 0, rows, NULL, n, 256) < 0)
			return fprintf(stderr, "cuda: %s\n", gpu_cuda_last_error()), 1;
		for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
			unsigned nb = batches[b], agree = 0;
			uint64_t tg[RUNS], tc[RUNS];

			for (int r = 0; r < RUNS; r++) {
				uint64_t t0 = vg_clock_ns();
				gpu_cuda_gallery_search(g, q, nb, K, idx, key, got);
				uint64_t t1 = vg_clock_ns();
				match_query(ctx, q, nb, K, res);
				uint64_t t2 = vg_clock_ns();
				tg[r] = t1 - t0;
				tc[r] = t2 - t1;
			}
			/* The same best entry: the GPU's key, made a distance, is the matcher's value. */
			for (unsigned j = 0; j < nb; j++) {
				double qq = 0;
				for (unsigned t = 0; t < D; t++)
					qq += (double)q[j * D + t] * q[j * D + t];
				double dist = sqrt(fmax(0.0, key[j * K] + qq));
				agree += got[j] > 0 && res[j].n > 0 && fabs(dist - res[j].hit[0].value) < 1e-3;
			}
			double g_qps = nb / (median(tg) / 1e9), c_qps = nb / (median(tc) / 1e9);
			printf("%7zu x d%d batch %3u: GPU %10.0f queries/s (%.1f Gmadd/s), CPU matcher (%s, %u threads) "
			       "%9.0f queries/s, ratio %.2fx; top-1 agreement %u/%u\n",
			       n, D, nb, g_qps, g_qps * n * D / 1e9, match_kernel_name(db), cores, c_qps, g_qps / c_qps,
			       agree, nb);
		}
		gpu_cuda_gallery_destroy(&g);
		match_ctx_close(&ctx);
		match_db_close(&db);
		free(rows), free(q), free(e), free(res), free(idx), free(key);
	}
	return 0;
}
