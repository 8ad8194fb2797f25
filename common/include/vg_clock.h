/**
 * @file vg_clock.h
 * Clocks for the fast path: a monotonic nanosecond clock for rates, deadlines and latencies, and
 * the wall clock for what people read (alerts, audit entries). Both are vDSO calls, no syscall.
 */
#ifndef VG_CLOCK_H
#define VG_CLOCK_H

#include <stdint.h>
#include <time.h>

#define VG_NS_PER_SEC 1000000000ull
#define VG_NS_PER_MS 1000000ull

/** Nanoseconds on CLOCK_MONOTONIC: never goes back, unaffected by NTP steps. */
static inline uint64_t vg_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * VG_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/** Nanoseconds since the Unix epoch on CLOCK_REALTIME. */
static inline uint64_t vg_clock_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * VG_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

#endif /* VG_CLOCK_H */
