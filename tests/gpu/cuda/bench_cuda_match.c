/*
 * The matcher's scan device on the GPU (gpu_cuda_match_attach) against the CPU matcher in the same
 * run, on the same vectors: for 16,384 and 131,072 entries of d 128 (L2, k 8) and batches of 1, 32
 * and 256, queries per second of
 *   device   match_query_device(): the descriptors already in device memory, as the nets leave them
 *   upload   match_query() on the GPU's matcher: the descriptors uploaded each batch
 *   cpu      match_query() on a matcher without a device (AVX-512 where the CPU has it, every core)
 * their ratios, and the GPU's multiply-adds per second. Medians of 21 timed batches. Every answer
 * is compared with the CPU's, hit for hit and value for value: all must agree (the keys are
 * bit-identical by construction). Skips (77) where there is no GPU.
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../matcher/match_brute.h"
#include "vg_bench.h"
#include "gpu_cuda.h"
#include "match.h"
#include "vg_clock.h"

#define D 128
#define K 8
#define RUNS 21
#define MAXB 256
#define CPU_ONLY (-2) /* open_matcher() without a scan device (-1 would be the host emulation) */

/* Queries whose answers are the same entries, in the same order, with the same values. */
static unsigned agreeing(const struct match_result *a, const struct match_result *b, unsigned n)
{
	unsigned same = 0;

	for (unsigned j = 0; j < n; j++) {
		bool ok = a[j].n == b[j].n;

		for (unsigned i = 0; ok && i < a[j].n; i++)
			ok = a[j].hit[i].seq == b[j].hit[i].seq &&
			     memcmp(&a[j].hit[i].value, &b[j].hit[i].value, sizeof(float)) == 0;
		same += ok;
	}
	return same;
}

static int open_matcher(struct match_db **db, struct match_ctx **ctx, unsigned shards, unsigned threads, int device,
			const struct match_entry *e, unsigned n)
{
	struct match_db_conf mc = { .d = D, .metric = MATCH_METRIC_L2, .n_shards = shards, .model = "bench",
				    .kernel = MATCH_KERNEL_AUTO };
	char err[256] = "";

	if (match_db_open(db, &mc, err, sizeof(err)) < 0 ||
	    (device != CPU_ONLY && gpu_cuda_match_attach(*db, device, err, sizeof(err)) < 0) ||
	    match_watchlist_set(*db, 1, 0.6f) < 0 || match_enroll(*db, e, n, err, sizeof(err)) != (int)n ||
	    match_ctx_open(ctx, *db, threads, MAXB) < 0) {
		fprintf(stderr, "bench_cuda_match: %s\n", err);
		return -1;
	}
	return 0;
}

int main(void)
{
	static const size_t sizes[] = { 16384, 131072 };
	static const unsigned batches[] = { 1, 32, 256 };
	static struct match_result rc_[MAXB], rd[MAXB], ru[MAXB];
	unsigned cores = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t s = 42;
	float *q = malloc(MAXB * D * sizeof(float)), *dq = NULL;

	if (gpu_cuda_device_count() <= 0) {
		fprintf(stderr, "bench_cuda_match: no CUDA device here: skipped\n");
		return 77;
	}
	if (!q || cudaMalloc((void **)&dq, MAXB * D * sizeof(float)) != cudaSuccess)
		return 1;
	if (cores > MATCH_THREADS_MAX)
		cores = MATCH_THREADS_MAX;
	for (size_t i = 0; i < MAXB * D; i++)
		q[i] = brute_randf(&s) * 0.3f;
	cudaMemcpy(dq, q, MAXB * D * sizeof(float), cudaMemcpyHostToDevice);
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t n = sizes[si];
		float *rows = malloc(n * D * sizeof(float));
		struct match_entry *e = malloc(n * sizeof(*e));
		struct match_db *cpu = NULL, *gpu = NULL;
		struct match_ctx *cctx = NULL, *gctx = NULL;
		struct match_stats st;

		if (!rows || !e)
			return 1;
		for (size_t i = 0; i < n * D; i++)
			rows[i] = brute_randf(&s) * 0.3f;
		for (size_t i = 0; i < n; i++)
			e[i] = (struct match_entry){ "subject", 1, rows + i * D };
		if (open_matcher(&cpu, &cctx, cores, cores, CPU_ONLY, e, (unsigned)n) < 0 ||
		    open_matcher(&gpu, &gctx, 1, 1, 0, e, (unsigned)n) < 0)
			return 1;
		match_stats_get(gpu, &st);
		if (!st.device_snapshot)
			return fprintf(stderr, "bench_cuda_match: the GPU could not take the watchlist\n"), 1;
		for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
			unsigned nb = batches[b], agree_d, agree_u;
			uint64_t td[RUNS], tu[RUNS], tc[RUNS];

			for (int r = 0; r < RUNS; r++) {
				uint64_t t0 = vg_clock_ns();

				match_query_device(gctx, dq, nb, K, rd);
				uint64_t t1 = vg_clock_ns();

				match_query(gctx, q, nb, K, ru);
				uint64_t t2 = vg_clock_ns();

				match_query(cctx, q, nb, K, rc_);
				uint64_t t3 = vg_clock_ns();

				td[r] = t1 - t0;
				tu[r] = t2 - t1;
				tc[r] = t3 - t2;
			}
			agree_d = agreeing(rc_, rd, nb);
			agree_u = agreeing(rc_, ru, nb);
			double d_qps = nb / vg_bench_median_s(td, RUNS), u_qps = nb / vg_bench_median_s(tu, RUNS),
			       c_qps = nb / vg_bench_median_s(tc, RUNS);
			printf("%7zu x d%d batch %3u: GPU %9.0f queries/s (%.1f Gmadd/s), with upload %9.0f; CPU matcher "
			       "(%s, %u threads) %9.0f queries/s; ratio %.2fx (%.2fx with upload); answers equal to the CPU's %u/%u\n",
			       n, D, nb, d_qps, d_qps * n * D / 1e9, u_qps, match_kernel_name(cpu), cores, c_qps,
			       d_qps / c_qps, u_qps / c_qps, agree_d + agree_u, 2 * nb);
		}
		match_stats_get(gpu, &st);
		printf("%7zu x d%d: %llu queries on the GPU, %llu fell back to the CPU, %.1f MiB of device memory\n", n, D,
		       (unsigned long long)st.device_queries, (unsigned long long)st.device_fallbacks,
		       st.device_bytes / 1048576.0);
		match_ctx_close(&gctx);
		match_ctx_close(&cctx);
		match_db_close(&gpu);
		match_db_close(&cpu);
		memset(rows, 0, n * D * sizeof(float));
		free(rows);
		free(e);
	}
	cudaFree(dq);
	free(q);
	return 0;
}
