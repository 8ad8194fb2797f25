/*
 * Counter blocks (vg_counter.h): one cache-aligned row per writer thread, summed on read, and a
 * registry of every live block for mgmt's exporters. Only create/destroy/format take the
 * registry's mutex; the fast path (vg_counter_add) touches nothing shared.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vg_base.h"
#include "vg_counter.h"

struct vg_counter_block {
	char stage[32];
	const struct vg_counter_desc *desc;
	unsigned n;
	unsigned n_rows;
	size_t row_stride; /* bytes, a multiple of the cache line: rows never share a line */
	struct vg_counter_block *next_registered;
	unsigned char *rows;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vg_counter_block *registry;

int vg_counter_block_create(struct vg_counter_block **out, const char *stage, const struct vg_counter_desc *desc,
			    unsigned n, unsigned n_rows)
{
	struct vg_counter_block *blk;

	if (!stage || !desc || n == 0 || n_rows == 0 || n > 4096 || n_rows > 4096 || strlen(stage) >= sizeof(blk->stage))
		return -EINVAL;
	blk = calloc(1, sizeof(*blk));
	if (!blk)
		return -ENOMEM;
	snprintf(blk->stage, sizeof(blk->stage), "%s", stage);
	blk->desc = desc;
	blk->n = n;
	blk->n_rows = n_rows;
	blk->row_stride = (n * sizeof(uint64_t) + VG_CACHE_LINE - 1) / VG_CACHE_LINE * VG_CACHE_LINE;
	blk->rows = aligned_alloc(VG_CACHE_LINE, blk->row_stride * n_rows);
	if (!blk->rows)
		goto out_free_blk;
	memset(blk->rows, 0, blk->row_stride * n_rows);

	pthread_mutex_lock(&registry_lock);
	blk->next_registered = registry;
	registry = blk;
	pthread_mutex_unlock(&registry_lock);
	*out = blk;
	return 0;

out_free_blk:
	free(blk);
	return -ENOMEM;
}

void vg_counter_block_destroy(struct vg_counter_block **pblk)
{
	struct vg_counter_block *blk = *pblk;

	if (!blk)
		return;
	pthread_mutex_lock(&registry_lock);
	for (struct vg_counter_block **p = &registry; *p; p = &(*p)->next_registered) {
		if (*p == blk) {
			*p = blk->next_registered;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	free(blk->rows);
	free(blk);
	*pblk = NULL;
}

struct vg_counter_row *vg_counter_block_row(struct vg_counter_block *blk, unsigned i)
{
	if (VG_NEVER(i >= blk->n_rows))
		i = 0;
	return (struct vg_counter_row *)(void *)(blk->rows + (size_t)i * blk->row_stride);
}

void vg_counter_block_read(const struct vg_counter_block *blk, uint64_t *out)
{
	memset(out, 0, blk->n * sizeof(*out));
	for (unsigned r = 0; r < blk->n_rows; r++) {
		/* Cost: n_rows * n relaxed loads; blocks hold tens of counters for at most a few dozen threads. */
		_Atomic uint64_t *v = (_Atomic uint64_t *)(void *)(blk->rows + (size_t)r * blk->row_stride);

		for (unsigned i = 0; i < blk->n; i++)
			out[i] += atomic_load_explicit(&v[i], memory_order_relaxed);
	}
}

const char *vg_counter_block_stage(const struct vg_counter_block *blk)
{
	return blk->stage;
}

unsigned vg_counter_block_size(const struct vg_counter_block *blk)
{
	return blk->n;
}

const struct vg_counter_desc *vg_counter_block_desc(const struct vg_counter_block *blk)
{
	return blk->desc;
}

int vg_counters_format_prometheus(char *buf, size_t len)
{
	uint64_t values[4096];
	size_t used = 0;
	int rc = 0;

	pthread_mutex_lock(&registry_lock);
	for (const struct vg_counter_block *blk = registry; blk; blk = blk->next_registered) {
		vg_counter_block_read(blk, values);
		for (unsigned i = 0; i < blk->n; i++) {
			int n = snprintf(buf + used, len - used,
					 "# HELP vigil_%s_%s %s\n# TYPE vigil_%s_%s counter\nvigil_%s_%s %" PRIu64 "\n",
					 blk->stage, blk->desc[i].name, blk->desc[i].help, blk->stage,
					 blk->desc[i].name, blk->stage, blk->desc[i].name, values[i]);
			if (n < 0 || (size_t)n >= len - used) {
				rc = -ENOSPC;
				goto out_unlock;
			}
			used += (size_t)n;
		}
	}
	rc = (int)used;
out_unlock:
	pthread_mutex_unlock(&registry_lock);
	return rc;
}
