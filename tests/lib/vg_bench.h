/*
 * What the C benchmarks share: the median of a run of timings (these machines are shared and
 * noisy: STYLE.md quotes medians and ratios, never a single run).
 */
#ifndef VG_BENCH_H
#define VG_BENCH_H

#include <stdint.h>
#include <stdlib.h>

static inline int vg_bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The median of the N timings at NS (nanoseconds; sorted in place), in seconds. */
static inline double vg_bench_median_s(uint64_t *ns, size_t n)
{
	qsort(ns, n, sizeof(*ns), vg_bench_cmp_u64);
	return (double)ns[n / 2] / 1e9;
}

#endif /* VG_BENCH_H */
