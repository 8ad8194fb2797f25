/*
 * common/vg_pool: exhaustion and reuse, biometric pools zeroed on put and marked MADV_DONTDUMP in
 * the kernel's own view (/proc/self/smaps "dd"), and get/put racing from several threads without
 * ever handing one buffer to two owners.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "vg_test.h"
#include "vg_pool.h"

/*
 * Whether the kernel lists the mapping that holds BASE with the VmFlag "dd" (don't dump). The
 * mapping may begin before BASE: the kernel merges neighbouring mappings with the same flags.
 */
static int mapping_has_dontdump(const void *base)
{
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	int in_mapping = 0, found = -1;
	uintptr_t p = (uintptr_t)base;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in_mapping = p >= lo && p < hi;
		else if (in_mapping && strncmp(line, "VmFlags:", 8) == 0) {
			found = strstr(line, " dd") != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

#define THREADS 4
#define ROUNDS 20000
#define BUFS 6

static struct vg_pool *shared_pool;
static _Atomic int owner[BUFS];
static _Atomic int conflicts;

static void *churn(void *arg)
{
	int me = (int)(intptr_t)arg + 1;

	for (int r = 0; r < ROUNDS; r++) {
		unsigned char *b = vg_pool_get(shared_pool);
		if (!b)
			continue;
		size_t idx = (size_t)(b - (unsigned char *)vg_pool_base(shared_pool, &(size_t){ 0 })) /
			     vg_pool_elt_size(shared_pool);
		int expected = 0;
		if (!atomic_compare_exchange_strong(&owner[idx], &expected, me))
			atomic_fetch_add(&conflicts, 1);
		b[0] = (unsigned char)me;
		atomic_store(&owner[idx], 0);
		vg_pool_put(shared_pool, b);
	}
	return NULL;
}

int main(void)
{
	struct vg_pool *pool = NULL;
	void *bufs[8];
	size_t len;

	CHECK_EQ_INT(vg_pool_create(&pool, "x", 0, 4, 0), -EINVAL);
	CHECK_EQ_INT(vg_pool_create(&pool, "x", 100, 0, 0), -EINVAL);
	CHECK(pool == NULL);

	/* Exhaustion: exactly COUNT buffers, distinct, aligned, then NULL; returned ones come back. */
	CHECK_EQ_INT(vg_pool_create(&pool, "crops", 150 * 150 * 3, 8, VG_POOL_BIOMETRIC), 0);
	if (!pool)
		return 1;
	CHECK_EQ_INT(vg_pool_count(pool), 8);
	CHECK(vg_pool_elt_size(pool) % 64 == 0 && vg_pool_elt_size(pool) >= 150 * 150 * 3);
	for (int i = 0; i < 8; i++) {
		bufs[i] = vg_pool_get(pool);
		CHECK(bufs[i] != NULL && ((uintptr_t)bufs[i] % 64) == 0 && vg_pool_contains(pool, bufs[i]));
		for (int j = 0; j < i; j++)
			CHECK(bufs[i] != bufs[j]);
	}
	CHECK(vg_pool_get(pool) == NULL);
	CHECK_EQ_INT(vg_pool_available(pool), 0);

	/* A biometric buffer is zeroed when it is returned. */
	memset(bufs[3], 0xab, 150 * 150 * 3);
	vg_pool_put(pool, bufs[3]);
	unsigned char *again = vg_pool_get(pool);
	CHECK(again == bufs[3]);
	size_t nonzero = 0;
	for (size_t i = 0; i < vg_pool_elt_size(pool); i++)
		nonzero += again[i] != 0;
	CHECK_EQ_INT(nonzero, 0);
	for (int i = 0; i < 8; i++)
		vg_pool_put(pool, bufs[i]);
	CHECK_EQ_INT(vg_pool_available(pool), 8);

	/* The kernel's own view: the mapping is excluded from core dumps. */
	const void *base = vg_pool_base(pool, &len);
	CHECK(len >= 8 * vg_pool_elt_size(pool));
	CHECK_EQ_INT(mapping_has_dontdump(base), 1);
	vg_pool_destroy(&pool);
	CHECK(pool == NULL);

	/* An ordinary pool is dumpable and is not zeroed (frames are scrubbed by their own stage). */
	CHECK_EQ_INT(vg_pool_create(&pool, "plain", 4096, 4, 0), 0);
	CHECK_EQ_INT(mapping_has_dontdump(vg_pool_base(pool, &len)), 0);
	CHECK(!vg_pool_locked(pool));
	vg_pool_destroy(&pool);

	/* Concurrency: threads take and return; no buffer ever has two owners; none is lost. */
	CHECK_EQ_INT(vg_pool_create(&shared_pool, "race", 64, BUFS, 0), 0);
	pthread_t t[THREADS];
	for (intptr_t i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, churn, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(atomic_load(&conflicts), 0);
	CHECK_EQ_INT(vg_pool_available(shared_pool), BUFS);
	int got = 0;
	while (vg_pool_get(shared_pool))
		got++;
	CHECK_EQ_INT(got, BUFS);
	vg_pool_destroy(&shared_pool);
	return vg_test_exit();
}
