/**
 * @file vg_pool.h
 * Fixed pools of equal-sized buffers, allocated once at start-up, for frames, crops and
 * descriptors: the fast path takes and returns buffers and never calls malloc.
 *
 * Pools that hold biometric data (VG_POOL_BIOMETRIC) keep it out of places it must not reach
 * (DESIGN.md invariant 1): their memory is marked MADV_DONTDUMP (absent from core dumps),
 * locked in RAM where the process may lock it (never written to swap), and every buffer is
 * zeroed when it is returned, so whatever a non-match left behind is gone at that moment.
 *
 * get and put are lock-free and may be called from any thread (a tagged Treiber stack): a
 * producer stage takes, a consumer stage returns.
 */
#ifndef VG_POOL_H
#define VG_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vg_pool_flags {
	VG_POOL_BIOMETRIC = 1 << 0, /* MADV_DONTDUMP, mlock, zero on put */
	VG_POOL_HUGEPAGES = 1 << 1, /* try 2 MiB pages first (falls back to 4 KiB silently) */
};

struct vg_pool;

/**
 * Make a pool of COUNT buffers of ELT_SIZE bytes each (rounded up to 64-byte alignment).
 * NAME is copied, for stats. Returns 0, -EINVAL (zero sizes, COUNT over 2^31), -ENOMEM.
 * *OUT untouched on error.
 */
int vg_pool_create(struct vg_pool **out, const char *name, size_t elt_size, uint32_t count, unsigned flags);

/** Unmap the pool (zeroing biometric pools first); sets *POOL to NULL. Buffers still out are lost. */
void vg_pool_destroy(struct vg_pool **pool);

/** A free buffer, or NULL when the pool is empty: the caller drops its work and counts the drop. */
void *vg_pool_get(struct vg_pool *pool);

/** Return BUF, which must have come from this pool's vg_pool_get(). Biometric pools zero it first. */
void vg_pool_put(struct vg_pool *pool, void *buf);

/** Zero SIZE bytes at P in a way the compiler may not elide (for descriptors, crops, keys). */
void vg_scrub(void *p, size_t size);

uint32_t vg_pool_available(const struct vg_pool *pool); /* free buffers now (a snapshot) */
uint32_t vg_pool_count(const struct vg_pool *pool);
size_t vg_pool_elt_size(const struct vg_pool *pool);
bool vg_pool_contains(const struct vg_pool *pool, const void *p);
/** Whether the pool's memory is locked in RAM (biometric pools where RLIMIT_MEMLOCK allowed it). */
bool vg_pool_locked(const struct vg_pool *pool);
/**
 * What the kernel says of the pool's memory: 1 if /proc/self/smaps marks its mapping "dd" (left
 * out of core dumps), 0 if not, -errno if it cannot be read. For the appliance's own proof that
 * its biometric pools are what they claim (a report, a status line); reads a /proc file: never
 * on the fast path.
 */
int vg_pool_kernel_dontdump(const struct vg_pool *pool);
/** First byte of the pool's mapping and its length, for tests that inspect /proc/self/smaps. */
const void *vg_pool_base(const struct vg_pool *pool, size_t *len /* OUT */);

#endif /* VG_POOL_H */
