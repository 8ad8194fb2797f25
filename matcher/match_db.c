/*
 * The matcher's state: which scan kernel this CPU can run, a descriptor's validation, open and
 * close, the scan device, and what a caller reads back (a watchlist's threshold, statistics).
 * Snapshots and their epochs are match_snap.c; enrolment and removal are match_write.c.
 */
#include <cpuid.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

/* ---- CPU support ------------------------------------------------------------------------------ */

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

bool match_kernel_supported(enum match_kernel kernel)
{
	unsigned a, b, c, d;

	switch (kernel) {
	case MATCH_KERNEL_REF:
		return true;
	case MATCH_KERNEL_AVX512:
		if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_FMA))
			return false;
		/* The OS must save opmask and zmm state (XCR0 bits 1, 2, 5, 6, 7). */
		if ((xgetbv0() & 0xe6) != 0xe6)
			return false;
		if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
			return false;
		return (b & bit_AVX512F) != 0;
	default:
		return false;
	}
}

const char *match_kernel_name(const struct match_db *db)
{
	return db->kernel_name;
}

/* ---- Validation --------------------------------------------------------------------------------- */

double match_desc_check(const float *v, unsigned d)
{
	double s = 0;

	for (unsigned k = 0; k < d; k++) {
		/* !(|v| <= max) also catches NaN */
		if (!(fabsf(v[k]) <= MATCH_VALUE_MAX))
			return -1;
		s += (double)v[k] * v[k];
	}
	return s;
}
/* ---- Open and close ----------------------------------------------------------------------------- */

int match_db_open(struct match_db **out, const struct match_db_conf *conf, char *err, size_t errlen)
{
	struct match_db *db;
	unsigned n_shards = conf->n_shards ? conf->n_shards : 1;
	enum match_kernel kernel = conf->kernel;

	if (conf->d < 16 || conf->d > MATCH_D_MAX || conf->d % 16)
		return vg_errf(err, errlen, -EINVAL, "d %u: must be a multiple of 16 in 16..%u", conf->d, MATCH_D_MAX);
	if (conf->metric != MATCH_METRIC_L2 && conf->metric != MATCH_METRIC_COSINE)
		return vg_errf(err, errlen, -EINVAL, "unknown metric %d", (int)conf->metric);
	if (n_shards > MATCH_SHARDS_MAX)
		return vg_errf(err, errlen, -EINVAL, "%u shards: at most %u", n_shards, MATCH_SHARDS_MAX);
	if (!conf->model || !conf->model[0] || strlen(conf->model) > MATCH_MODEL_MAX)
		return vg_errf(err, errlen, -EINVAL, "model id must be 1..%u bytes", MATCH_MODEL_MAX);
	if (kernel == MATCH_KERNEL_AUTO)
		kernel = match_kernel_supported(MATCH_KERNEL_AVX512) ? MATCH_KERNEL_AVX512 : MATCH_KERNEL_REF;
	if (!match_kernel_supported(kernel))
		return vg_errf(err, errlen, -ENOTSUP, "this CPU cannot run the requested kernel");

	db = aligned_alloc(VG_CACHE_LINE, (sizeof(*db) + VG_CACHE_LINE - 1) & ~(size_t)(VG_CACHE_LINE - 1));
	if (!db)
		return -ENOMEM;
	memset(db, 0, sizeof(*db));
	db->d = conf->d;
	db->metric = conf->metric;
	db->n_shards = n_shards;
	strcpy(db->model, conf->model);
	db->scan = kernel == MATCH_KERNEL_AVX512 ? match_scan_avx512 : match_scan_ref;
	db->kernel_name = kernel == MATCH_KERNEL_AVX512 ? "avx512" : "ref";
	atomic_init(&db->epoch, 1);
	db->next_seq = 1;

	struct match_snap *s = calloc(1, sizeof(*s));

	if (!s) {
		free(db);
		return -ENOMEM;
	}
	s->n_shards = n_shards;
	atomic_init(&db->snap, s);
	if (pthread_mutex_init(&db->writer, NULL)) {
		free(s);
		free(db);
		return -ENOMEM;
	}
	*out = db;
	return 0;
}

static void snap_free_all(struct match_db *db, struct match_snap *s)
{
	for (unsigned i = 0; i < s->n_shards; i++)
		for (unsigned j = 0; j < s->shard[i].n_segs; j++) {
			match_seg_free(db, s->shard[i].segs[j].seg);
			match_bias_free(db, s->shard[i].segs[j].bias);
		}
	match_snap_free_arrays(db, s);
}

void match_db_close(struct match_db **dbp)
{
	struct match_db *db = *dbp;

	if (!db)
		return;
	match_reclaim(db, true);
	snap_free_all(db, atomic_load(&db->snap));
	if (db->dev_ops)
		db->dev_ops->close(db->dev);
	pthread_mutex_destroy(&db->writer);
	free(db);
	*dbp = NULL;
}

int match_db_set_device(struct match_db *db, const struct match_device_ops *ops, void *dev, char *err,
			size_t errlen)
{
	struct match_snap *nw;
	int rc = 0;

	if (!ops || !ops->seg_put || !ops->bias_put || !ops->table_put || !ops->release || !ops->ctx_open ||
	    !ops->ctx_close || !ops->search || !ops->bytes || !ops->close)
		return vg_errf(err, errlen, -EINVAL, "a device hook is missing");
	pthread_mutex_lock(&db->writer);
	if (db->dev_ops) {
		rc = vg_errf(err, errlen, -EBUSY, "a scan device is attached already");
		goto out_unlock;
	}
	/* A context decides at open whether it has device scratch; 64 slots, read once. */
	for (int i = 0; i < MATCH_READERS_MAX; i++)
		if (atomic_load(&db->readers[i].used)) {
			rc = vg_errf(err, errlen, -EBUSY, "attach the scan device before opening query contexts");
			goto out_unlock;
		}
	nw = match_snap_clone(db, atomic_load_explicit(&db->snap, memory_order_relaxed), 0);
	if (!nw) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	db->dev_ops = ops;
	db->dev = dev;
	match_snap_publish(db, nw); /* the same watchlist, with its device copy */
out_unlock:
	pthread_mutex_unlock(&db->writer);
	return rc;
}
int match_watchlist_threshold(struct match_db *db, uint32_t id, float *out)
{
	const struct match_wl *w;
	int rc = -ENOENT;

	pthread_mutex_lock(&db->writer);
	w = match_wl_find(atomic_load_explicit(&db->snap, memory_order_relaxed), id);
	if (w) {
		*out = w->threshold;
		rc = 0;
	}
	pthread_mutex_unlock(&db->writer);
	return rc;
}

void match_stats_get(struct match_db *db, struct match_stats *out)
{
	struct match_snap *s;

	memset(out, 0, sizeof(*out));
	/* Under the writer lock the snapshot cannot be freed under us; stats are not on the fast path. */
	pthread_mutex_lock(&db->writer);
	s = atomic_load_explicit(&db->snap, memory_order_relaxed);
	out->n_shards = s->n_shards;
	out->generation = s->gen;
	for (unsigned i = 0; i < s->n_shards; i++) {
		out->shard_entries[i] = s->shard[i].live;
		out->entries += s->shard[i].live;
		out->segments += s->shard[i].n_segs;
		for (unsigned j = 0; j < s->shard[i].n_segs; j++) {
			const struct match_segv *sv = &s->shard[i].segs[j];

			out->bytes += (size_t)sv->seg->cap * (db->d * sizeof(float) + sizeof(struct match_meta) + sizeof(uint64_t) + sizeof(float));
		}
		out->shard_ns[i] = atomic_load_explicit(&db->shard_ns[i].ns, memory_order_relaxed);
	}
	out->device = db->dev_ops != NULL;
	out->device_snapshot = s->dev_table != NULL;
	out->device_bytes = db->dev_ops ? db->dev_ops->bytes(db->dev) : 0;
	pthread_mutex_unlock(&db->writer);
	out->device_queries = atomic_load_explicit(&db->dev_queries, memory_order_relaxed);
	out->device_fallbacks = atomic_load_explicit(&db->dev_fallbacks, memory_order_relaxed);
	out->device_errors = atomic_load_explicit(&db->dev_errors, memory_order_relaxed);
	out->queries = atomic_load_explicit(&db->queries, memory_order_relaxed);
	out->batches = atomic_load_explicit(&db->batches, memory_order_relaxed);
	out->refused = atomic_load_explicit(&db->refused, memory_order_relaxed);
}
