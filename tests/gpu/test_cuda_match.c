/*
 * The matcher's scan on the GPU (gpu_cuda.h: gpu_cuda_gallery_*) against the tests' brute force
 * (tests/matcher/match_brute.h, itself proven equal to the CPU matcher): for L2 and cosine, a
 * watchlist of 16,411 entries (not a multiple of any block) with duplicated entries (ties, broken
 * by enrolment order), batches of 1, 7, 64, 65 and 256 queries, k 1 and 8: the same entries in the
 * same order, and keys equal to the bit. A gallery smaller than k returns what there is; bad
 * arguments are refused. Where there is no GPU: skip (77).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../matcher/match_brute.h"
#include "../vg_test.h"
#include "gpu_cuda.h"

#define D 128
#define N 16411
#define NQ 256

static void check_metric(enum match_metric m, float *rows, const float *raw_q)
{
	static float q[NQ * D];
	static uint32_t idx[NQ * GPU_CUDA_K_MAX];
	static float key[NQ * GPU_CUDA_K_MAX];
	static unsigned got[NQ];
	static struct brute_entry e[N];
	struct gpu_cuda_gallery *g = NULL;
	static const unsigned batches[] = { 1, 7, 64, 65, 256 };
	unsigned mismatches = 0;

	for (unsigned i = 0; i < NQ; i++) {
		if (m == MATCH_METRIC_COSINE)
			brute_normalize(raw_q + (size_t)i * D, D, q + (size_t)i * D);
		else
			memcpy(q + (size_t)i * D, raw_q + (size_t)i * D, D * sizeof(float));
	}
	for (unsigned i = 0; i < N; i++)
		e[i] = (struct brute_entry){ rows + (size_t)i * D, i, 1 };
	CHECK_EQ_INT(gpu_cuda_gallery_create(&g, 0, D, m, rows, NULL, N, NQ), 0);
	if (!g) {
		fprintf(stderr, "cuda: %s\n", gpu_cuda_last_error());
		return;
	}
	CHECK_EQ_INT(gpu_cuda_gallery_size(g), N);
	for (unsigned b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		for (unsigned k = 1; k <= GPU_CUDA_K_MAX; k += GPU_CUDA_K_MAX - 1) {
			unsigned nb = batches[b];
			int rc = gpu_cuda_gallery_search(g, q, nb, k, idx, key, got);
			if (rc < 0)
				fprintf(stderr, "cuda: %s\n", gpu_cuda_last_error());
			CHECK_EQ_INT(rc, 0);
			for (unsigned j = 0; j < nb; j++) {
				unsigned want[MATCH_K_MAX];
				unsigned n = brute_topk(e, N, q + (size_t)j * D, D, m, k, want);
				if (got[j] != n) {
					mismatches++;
					continue;
				}
				for (unsigned t = 0; t < n; t++) {
					float bk = brute_key(q + (size_t)j * D, e[want[t]].v, D, m);
					if (idx[j * k + t] != want[t] || memcmp(&key[j * k + t], &bk, sizeof(bk)) != 0)
						mismatches++;
				}
			}
		}
	}
	if (mismatches)
		fprintf(stderr, "%s: %u results differ from brute force\n", m == MATCH_METRIC_L2 ? "l2" : "cosine", mismatches);
	CHECK_EQ_INT(mismatches, 0);
	CHECK_EQ_INT(gpu_cuda_gallery_search(g, q, 0, 8, idx, key, got), -EINVAL);
	CHECK_EQ_INT(gpu_cuda_gallery_search(g, q, NQ + 1, 8, idx, key, got), -EINVAL);
	CHECK_EQ_INT(gpu_cuda_gallery_search(g, q, 1, GPU_CUDA_K_MAX + 1, idx, key, got), -EINVAL);
	gpu_cuda_gallery_destroy(&g);
	CHECK(g == NULL);
}

int main(void)
{
	int n = gpu_cuda_device_count();
	uint64_t s = 0x5eed;
	float *rows, *rq;
	struct gpu_cuda_gallery *g = NULL;

	if (n < 0) {
		fprintf(stderr, "cuda: %s\n", gpu_cuda_last_error());
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "cuda: no CUDA device here: skipped\n");
		return VG_TEST_SKIP;
	}
	rows = malloc((size_t)N * D * sizeof(float));
	rq = malloc((size_t)NQ * D * sizeof(float));
	if (!rows || !rq)
		return 1;
	for (size_t i = 0; i < (size_t)N * D; i++)
		rows[i] = brute_randf(&s) * 0.3f;
	/* Ties: ten copies of entry 50, scattered, and queries that are entries themselves. */
	for (unsigned c = 0; c < 10; c++)
		memcpy(rows + (size_t)(1000 + 1500 * c) * D, rows + 50 * D, D * sizeof(float));
	for (size_t i = 0; i < (size_t)NQ * D; i++)
		rq[i] = brute_randf(&s) * 0.3f;
	memcpy(rq, rows + 50 * D, D * sizeof(float));
	memcpy(rq + 3 * D, rows + 16410 * D, D * sizeof(float));
	check_metric(MATCH_METRIC_L2, rows, rq);
	/* Cosine on unit vectors, as the matcher stores them. */
	for (unsigned i = 0; i < N; i++)
		brute_normalize(rows + (size_t)i * D, D, rows + (size_t)i * D);
	check_metric(MATCH_METRIC_COSINE, rows, rq);

	/* Fewer entries than k: all of them, best first. */
	static uint32_t idx[GPU_CUDA_K_MAX];
	static float key[GPU_CUDA_K_MAX];
	unsigned got = 0;
	CHECK_EQ_INT(gpu_cuda_gallery_create(&g, 0, D, 0, rows, NULL, 3, 1), 0);
	if (g) {
		CHECK_EQ_INT(gpu_cuda_gallery_search(g, rq, 1, 8, idx, key, &got), 0);
		CHECK_EQ_INT(got, 3);
		CHECK(key[0] <= key[1] && key[1] <= key[2]);
		gpu_cuda_gallery_destroy(&g);
	}
	CHECK_EQ_INT(gpu_cuda_gallery_create(&g, n, D, 0, rows, NULL, 3, 1), -ENODEV);
	CHECK_EQ_INT(gpu_cuda_gallery_create(&g, 0, 0, 0, rows, NULL, 3, 1), -EINVAL);
	CHECK_EQ_INT(gpu_cuda_gallery_create(&g, 0, D, 2, rows, NULL, 3, 1), -EINVAL);
	memset(rows, 0, (size_t)N * D * sizeof(float));
	free(rows);
	free(rq);
	return vg_test_exit();
}
