/*
 * Buffer pools (vg_pool.h): one anonymous mapping cut into equal buffers, with a lock-free free
 * list. The free list is a Treiber stack of buffer indices whose head carries a 32-bit tag bumped
 * on every change, so a pop that raced with pop+push of the same buffer (ABA) fails its CAS and
 * retries. The next-links live in their own array, never inside the buffers, so a racing reader
 * never reads a buffer's (biometric) contents and a stale link is harmless.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vg_base.h"
#include "vg_pool.h"

#define POOL_NIL UINT32_MAX
#define HUGE_PAGE (2u << 20)

struct vg_pool {
	_Atomic uint64_t head VG_CACHE_ALIGNED; /* (tag << 32) | index of the first free buffer */
	_Atomic uint32_t available;
	unsigned char *base VG_CACHE_ALIGNED;
	size_t map_len;
	size_t elt_size;
	uint32_t count;
	unsigned flags;
	bool locked;
	_Atomic uint32_t *next; /* next[i]: the free buffer after i */
	char name[32];
};

static inline uint64_t pack(uint32_t tag, uint32_t idx)
{
	return (uint64_t)tag << 32 | idx;
}

void vg_scrub(void *p, size_t size)
{
	explicit_bzero(p, size);
}

int vg_pool_create(struct vg_pool **out, const char *name, size_t elt_size, uint32_t count, unsigned flags)
{
	struct vg_pool *pool;
	size_t stride, len;
	void *base = MAP_FAILED;

	if (elt_size == 0 || count == 0 || count > (1u << 31) || elt_size > (1ull << 36))
		return -EINVAL;
	stride = (elt_size + VG_CACHE_LINE - 1) / VG_CACHE_LINE * VG_CACHE_LINE;
	if (__builtin_mul_overflow(stride, (size_t)count, &len))
		return -EINVAL;

	pool = aligned_alloc(VG_CACHE_LINE, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	memset(pool, 0, sizeof(*pool));
	pool->next = calloc(count, sizeof(*pool->next));
	if (!pool->next)
		goto out_free_pool;

	if (flags & VG_POOL_HUGEPAGES) {
		size_t huge_len = (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;

		base = mmap(NULL, huge_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (base != MAP_FAILED)
			len = huge_len;
	}
	if (base == MAP_FAILED)
		base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		goto out_free_next;

	if (flags & VG_POOL_BIOMETRIC) {
		/* Out of core dumps: refuse to run with a biometric pool that a dump would show. */
		if (madvise(base, len, MADV_DONTDUMP) < 0)
			goto out_unmap;
		/* Out of swap where the process may lock it; vg_pool_locked() lets the caller warn. */
		pool->locked = mlock(base, len) == 0;
	}

	pool->base = base;
	pool->map_len = len;
	pool->elt_size = stride;
	pool->count = count;
	pool->flags = flags;
	snprintf(pool->name, sizeof(pool->name), "%s", name ? name : "pool");
	for (uint32_t i = 0; i < count; i++)
		atomic_init(&pool->next[i], i + 1 < count ? i + 1 : POOL_NIL);
	atomic_init(&pool->head, pack(0, 0));
	atomic_init(&pool->available, count);
	*out = pool;
	return 0;

out_unmap:
	munmap(base, len);
out_free_next:
	free(pool->next);
out_free_pool:
	free(pool);
	return -ENOMEM;
}

void vg_pool_destroy(struct vg_pool **ppool)
{
	struct vg_pool *pool = *ppool;

	if (!pool)
		return;
	if (pool->flags & VG_POOL_BIOMETRIC)
		vg_scrub(pool->base, pool->map_len);
	if (pool->locked)
		munlock(pool->base, pool->map_len);
	munmap(pool->base, pool->map_len);
	free(pool->next);
	free(pool);
	*ppool = NULL;
}

void *vg_pool_get(struct vg_pool *pool)
{
	uint64_t head = atomic_load_explicit(&pool->head, memory_order_acquire);

	for (;;) {
		uint32_t idx = (uint32_t)head;

		if (idx == POOL_NIL)
			return NULL;
		uint32_t next = atomic_load_explicit(&pool->next[idx], memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&pool->head, &head, pack((uint32_t)(head >> 32) + 1, next),
							  memory_order_acquire, memory_order_acquire)) {
			atomic_fetch_sub_explicit(&pool->available, 1, memory_order_relaxed);
			return pool->base + (size_t)idx * pool->elt_size;
		}
	}
}

void vg_pool_put(struct vg_pool *pool, void *buf)
{
	size_t off = (size_t)((unsigned char *)buf - pool->base);
	uint32_t idx = (uint32_t)(off / pool->elt_size);
	uint64_t head;

	if (VG_NEVER(!vg_pool_contains(pool, buf) || off % pool->elt_size != 0))
		return;
	if (pool->flags & VG_POOL_BIOMETRIC)
		vg_scrub(buf, pool->elt_size);

	head = atomic_load_explicit(&pool->head, memory_order_relaxed);
	do {
		atomic_store_explicit(&pool->next[idx], (uint32_t)head, memory_order_relaxed);
	} while (!atomic_compare_exchange_weak_explicit(&pool->head, &head, pack((uint32_t)(head >> 32) + 1, idx),
							memory_order_release, memory_order_relaxed));
	atomic_fetch_add_explicit(&pool->available, 1, memory_order_relaxed);
}

uint32_t vg_pool_available(const struct vg_pool *pool)
{
	return atomic_load_explicit(&((struct vg_pool *)pool)->available, memory_order_relaxed);
}

uint32_t vg_pool_count(const struct vg_pool *pool)
{
	return pool->count;
}

size_t vg_pool_elt_size(const struct vg_pool *pool)
{
	return pool->elt_size;
}

bool vg_pool_contains(const struct vg_pool *pool, const void *p)
{
	const unsigned char *c = p;

	return c >= pool->base && c < pool->base + (size_t)pool->count * pool->elt_size;
}

bool vg_pool_locked(const struct vg_pool *pool)
{
	return pool->locked;
}

int vg_pool_kernel_dontdump(const struct vg_pool *pool)
{
	uintptr_t p = (uintptr_t)pool->base;
	FILE *f = fopen("/proc/self/smaps", "re");
	bool in_mapping = false;
	char line[512];
	int found = -ENOENT;

	if (!f)
		return -errno;
	/* The mapping may begin before the pool: the kernel merges neighbours with the same flags. */
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char *dash = strchr(line, '-'), *space = strchr(line, ' ');

		if (dash && space && dash < space && sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in_mapping = p >= lo && p < hi;
		} else if (in_mapping && strncmp(line, "VmFlags:", 8) == 0) {
			found = strstr(line, " dd") != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

const void *vg_pool_base(const struct vg_pool *pool, size_t *len)
{
	*len = pool->map_len;
	return pool->base;
}
