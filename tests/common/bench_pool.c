/*
 * bench_pool: what a frame/crop buffer costs the fast path. vg_pool get+put of a 150x150 RGB crop
 * (67,500 bytes) against its peer, the process's malloc+free of the same size (jemalloc, linked
 * into Vigil's programs), in the same run on the same core, 16 buffers in flight as a batch
 * would hold. Prints medians of 15 repetitions and the ratio (peer / ours: above 1, the pool is
 * faster). The biometric pool's put also zeroes the buffer, so its figure is shown apart.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vg_clock.h"
#include "vg_pool.h"

#define CROP (150 * 150 * 3)
#define IN_FLIGHT 16
#define ROUNDS 20000
#define REPS 15

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* ns per get+put (or malloc+free) pair; each buffer's first byte is written, as a user would. */
static double run_pool(struct vg_pool *pool)
{
	void *b[IN_FLIGHT];
	uint64_t t0 = vg_clock_ns();

	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < IN_FLIGHT; i++) {
			b[i] = vg_pool_get(pool);
			*(volatile char *)b[i] = (char)i;
		}
		for (int i = 0; i < IN_FLIGHT; i++)
			vg_pool_put(pool, b[i]);
	}
	return (double)(vg_clock_ns() - t0) / ((double)ROUNDS * IN_FLIGHT);
}

static double run_malloc(void)
{
	void *b[IN_FLIGHT];
	uint64_t t0 = vg_clock_ns();

	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < IN_FLIGHT; i++) {
			b[i] = malloc(CROP);
			*(volatile char *)b[i] = (char)i;
		}
		for (int i = 0; i < IN_FLIGHT; i++)
			free(b[i]);
	}
	return (double)(vg_clock_ns() - t0) / ((double)ROUNDS * IN_FLIGHT);
}

int main(void)
{
	struct vg_pool *plain, *bio;
	double ours[REPS], peer[REPS], scrub[REPS];

	if (vg_pool_create(&plain, "bench", CROP, IN_FLIGHT, 0) < 0 ||
	    vg_pool_create(&bio, "bench-bio", CROP, IN_FLIGHT, VG_POOL_BIOMETRIC) < 0) {
		fprintf(stderr, "bench_pool: cannot make pools\n");
		return 1;
	}
	run_pool(plain); /* warm-up: fault the pages in */
	run_malloc();
	for (int i = 0; i < REPS; i++) {
		ours[i] = run_pool(plain);
		peer[i] = run_malloc();
	}
	for (int i = 0; i < REPS; i++)
		scrub[i] = run_pool(bio);
	double o = median(ours, REPS), p = median(peer, REPS), s = median(scrub, REPS);
	printf("buffer of %d bytes, %d in flight, median of %d runs of %d pairs\n", CROP, IN_FLIGHT, REPS,
	       ROUNDS * IN_FLIGHT);
	printf("vg_pool get+put:            %8.1f ns\n", o);
	printf("malloc+free (peer):         %8.1f ns\n", p);
	printf("ratio peer/ours:            %8.2fx\n", p / o);
	printf("biometric pool (zero on put): %6.1f ns (%.1f GB/s zeroing, the 16 buffers stay in cache)\n", s, CROP / s);
	vg_pool_destroy(&plain);
	vg_pool_destroy(&bio);
	return 0;
}
