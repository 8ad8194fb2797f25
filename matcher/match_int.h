/*
 * The matcher's private layout: immutable segments of entries, snapshots of them per shard,
 * the epoch scheme that frees old snapshots, and the scan kernels' common interface.
 */
#ifndef MATCH_INT_H
#define MATCH_INT_H

#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "match.h"
#include "vg_base.h"

/*
 * Entries are stored in blocks of 16 transposed: block b holds dimension k of its 16 entries in
 * x[(b * d + k) * 16 + 0..15], so one 64-byte load is dimension k of 16 entries and a query
 * dimension is broadcast against it: no horizontal sums. A segment's capacity is a multiple of
 * MATCH_SEG_GROUP entries (4 blocks), the kernels' unroll.
 */
#define MATCH_LANES MATCH_DEVICE_LANES /* match.h: a scan device reads segments in this layout */
#define MATCH_SEG_GROUP MATCH_DEVICE_GROUP
#define MATCH_SEG_TARGET 4096 /* merged segments grow to this; 2 MiB at d = 128 */

struct match_meta {
	uint64_t seq;        /* enrolment order: the tie-break */
	uint64_t hash;       /* of the subject, so that remove compares strings only on a hit */
	uint32_t watchlist;
	char subject[MATCH_SUBJECT_MAX + 1];
};

/* Immutable once published. Written only by the writer before publication. */
struct match_seg {
	uint32_t cap;          /* entries, a multiple of MATCH_SEG_GROUP */
	uint32_t n;            /* filled entries (the rest are padding with bias = +inf) */
	unsigned d;
	float *x;              /* cap / 16 blocks, transposed, 64-byte aligned */
	struct match_meta *meta;
	uint64_t *hash;        /* meta[i].hash again, dense: a remove by subject reads 8 bytes per entry */
	uint64_t mark;         /* writer only: last snapshot generation that holds it */
	void *dev;             /* writer only: its device copy (match_device_ops.seg_put), or NULL */
};

/*
 * Per-snapshot view of a segment's liveness: bias[i] is ||x_i||^2 (L2), 0 (cosine) or +inf for
 * a removed or padding entry, so tombstones cost the scan nothing. Immutable once published; a
 * remove copies it (4 bytes per entry).
 */
struct match_bias {
	uint64_t mark;
	void *dev;             /* writer only: its device copy (bias_put), or NULL */
	uint32_t live;
	uint32_t cap;
	float v[] VG_CACHE_ALIGNED;
};

struct match_segv {
	struct match_seg *seg;
	struct match_bias *bias;
};

struct match_shardv {
	unsigned n_segs;
	uint64_t live;
	struct match_segv *segs; /* into the snapshot's own allocation */
};

struct match_wl {
	uint32_t id;
	float threshold;
	uint64_t live;
};

/* One published version of everything. Immutable once published. */
struct match_snap {
	uint64_t gen;
	unsigned n_shards;
	unsigned n_wl;
	struct match_wl *wl;      /* sorted by id */
	struct match_shardv shard[MATCH_SHARDS_MAX];
	/* Its device copy (match.h), or NULL: the table_put handle, and the segments in its order. */
	void *dev_table;
	const struct match_seg **dev_segs;
};

/* A candidate in a running top-k. */
struct match_cand {
	float key;
	uint32_t idx;
	uint64_t seq;
	const struct match_seg *seg;
};

struct match_topk {
	float worst;   /* FLT_MAX until k candidates are held: +inf (dead) never qualifies */
	unsigned n, k;
	struct match_cand c[MATCH_K_MAX];
};

static inline void match_topk_init(struct match_topk *t, unsigned k)
{
	t->worst = FLT_MAX;
	t->n = 0;
	t->k = k;
}

/* Insert (key, seq) if it ranks within the best k; ranks by key, then by seq. At most k moves. */
static inline void match_topk_insert(struct match_topk *t, float key, uint64_t seq, const struct match_seg *seg,
				     uint32_t idx)
{
	unsigned i;

	if (!(key <= t->worst))
		return;
	if (t->n == t->k) {
		const struct match_cand *w = &t->c[t->n - 1];

		if (key > w->key || (key == w->key && seq > w->seq))
			return;
		t->n--;
	}
	for (i = t->n; i > 0; i--) {
		const struct match_cand *p = &t->c[i - 1];

		if (p->key < key || (p->key == key && p->seq < seq))
			break;
		t->c[i] = t->c[i - 1];
	}
	t->c[i] = (struct match_cand){ .key = key, .idx = idx, .seq = seq, .seg = seg };
	t->n++;
	t->worst = t->n == t->k ? t->c[t->n - 1].key : FLT_MAX;
}

/*
 * A scan kernel: every entry of SEGV against NQ queries at Q (nq * d floats, already unit length
 * under cosine), each candidate into TK[j]. key = fma(alpha, dot, bias) with the dot product one
 * fma chain in dimension order starting from 0.0f, so that every kernel gives bit-identical keys.
 */
typedef void match_scan_fn(const struct match_segv *segv, unsigned d, const float *q, unsigned nq, float alpha,
			   struct match_topk *tk);

match_scan_fn match_scan_ref;
match_scan_fn match_scan_avx512;

/* Called by the kernels for lanes whose key passed the SIMD compare. */
static inline void match_scan_offer(const struct match_segv *sv, struct match_topk *tk, float key, uint32_t idx)
{
	if (idx < sv->seg->n)
		match_topk_insert(tk, key, sv->seg->meta[idx].seq, sv->seg, idx);
}

/* Epochs: a query context holds a reader slot; 0 means outside any read section. */
struct match_reader_slot {
	_Atomic uint64_t epoch;
	_Atomic int used;
} VG_CACHE_ALIGNED;

#define MATCH_READERS_MAX 64

/* What a publication replaced, freed once no reader of epoch `epoch` is left. Writer only. */
struct match_retired {
	struct match_retired *next;
	uint64_t epoch;
	struct match_snap *snap;
	struct match_seg **segs;
	struct match_bias **bias;
	size_t n_segs, n_bias;
};

struct match_db {
	unsigned d;
	enum match_metric metric;
	unsigned n_shards;
	char model[MATCH_MODEL_MAX + 1];
	match_scan_fn *scan;
	const char *kernel_name;

	_Atomic(struct match_snap *) snap;
	_Atomic uint64_t epoch; /* starts at 1 */
	struct match_reader_slot readers[MATCH_READERS_MAX];

	pthread_mutex_t writer;  /* serialises writers only; never taken by a scan */
	struct match_retired *retired; /* under writer */
	unsigned n_retired;
	uint64_t next_seq;
	uint64_t gen;

	/* The scan device: set once, before any context is opened, by match_db_set_device(). */
	const struct match_device_ops *dev_ops;
	void *dev;

	_Atomic uint64_t queries, batches, refused;
	_Atomic uint64_t dev_queries, dev_fallbacks, dev_errors;
	struct {
		_Atomic uint64_t ns;
	} VG_CACHE_ALIGNED shard_ns[MATCH_SHARDS_MAX];
};

int match_reader_acquire(struct match_db *db);
void match_reader_release(struct match_db *db, int slot);

static inline struct match_snap *match_read_lock(struct match_db *db, int slot)
{
	/* seq_cst store then seq_cst load: either the writer sees us, or we see its new pointer. */
	atomic_store(&db->readers[slot].epoch, atomic_load(&db->epoch));
	return atomic_load(&db->snap);
}

static inline void match_read_unlock(struct match_db *db, int slot)
{
	atomic_store_explicit(&db->readers[slot].epoch, 0, memory_order_release);
}

/* Validate one descriptor: finite and within MATCH_VALUE_MAX; returns its squared norm or -1. */
double match_desc_check(const float *v, unsigned d);

/*
 * Segments and snapshots (match_snap.c). Writer only, under db->writer: a scan reads only what
 * match_snap_publish() made current, and frees nothing. The _new and _clone ones return NULL
 * when out of memory; every _free zeroes the descriptors and biases it held.
 */
struct match_seg *match_seg_new(struct match_db *db, uint32_t n_entries);
void match_seg_free(struct match_db *db, struct match_seg *seg);
void match_seg_append(struct match_seg *seg, struct match_bias *b, const float *v, float bias,
		      const struct match_meta *meta);
void match_seg_get(const struct match_seg *seg, uint32_t i, float *v /* OUT: d */);
struct match_bias *match_bias_new(uint32_t cap); /* every entry dead (+inf) */
struct match_bias *match_bias_dup(const struct match_bias *o);
void match_bias_free(struct match_db *db, struct match_bias *b);
struct match_snap *match_snap_clone(struct match_db *db, const struct match_snap *old, unsigned extra);
void match_snap_discard(struct match_db *db, struct match_snap *draft, const struct match_snap *old);
void match_snap_free_arrays(struct match_db *db, struct match_snap *s);
void match_snap_publish(struct match_db *db, struct match_snap *nw);
void match_reclaim(struct match_db *db, bool wait);

/* For the file loader: enroll under the writer lock already held, with new watchlists. */
int match_enroll_locked(struct match_db *db, const struct match_watchlist_def *wl, unsigned n_wl,
			const struct match_entry *e, unsigned n, char *err, size_t errlen);

/* Watchlist ID in snapshot S (its wl array is sorted by id), or NULL: a binary search. */
static inline struct match_wl *match_wl_find(const struct match_snap *s, uint32_t id)
{
	unsigned lo = 0, hi = s->n_wl;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (s->wl[mid].id == id)
			return &s->wl[mid];
		if (s->wl[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

#endif /* MATCH_INT_H */
