/*
 * Snapshots of immutable segments per shard: how a writer builds one (segments, bias arrays, a
 * draft cloned from the current snapshot), publishes it with one atomic store, and frees what it
 * replaced after a grace period (epochs on C11 atomics, match_int.h). Everything here but the
 * reader slots is the writer's, under db->writer; a scan only reads what was published.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "match_int.h"
#include "vg_pool.h"

/* ---- Epochs ------------------------------------------------------------------------------------- */

int match_reader_acquire(struct match_db *db)
{
	for (int i = 0; i < MATCH_READERS_MAX; i++) {
		int z = 0;

		if (atomic_compare_exchange_strong(&db->readers[i].used, &z, 1))
			return i;
	}
	return -EAGAIN;
}

void match_reader_release(struct match_db *db, int slot)
{
	atomic_store(&db->readers[slot].epoch, 0);
	atomic_store(&db->readers[slot].used, 0);
}

/* Whether every reader that could hold a snapshot retired at epoch E has left. Never waits. */
static bool grace_over(struct match_db *db, uint64_t e)
{
	for (int i = 0; i < MATCH_READERS_MAX; i++) {
		uint64_t s = atomic_load(&db->readers[i].epoch);

		if (s != 0 && s < e)
			return false;
	}
	return true;
}

/* Wait until every reader that could have seen the previous snapshot has left. Purge and close only. */
static void synchronize(struct match_db *db, uint64_t e)
{
	while (!grace_over(db, e)) {
		struct timespec ts = { 0, 20000 }; /* a scan of 100k entries takes ~2 ms: sleep, don't spin */

		nanosleep(&ts, NULL);
	}
}

/* ---- Segments ----------------------------------------------------------------------------------- */

/* Zero and free a device copy, if there is one (the device's memory held descriptors too). */
static void dev_release(struct match_db *db, void **handle)
{
	if (*handle)
		db->dev_ops->release(db->dev, *handle);
	*handle = NULL;
}

void match_seg_free(struct match_db *db, struct match_seg *seg)
{
	if (!seg)
		return;
	dev_release(db, &seg->dev);
	/* Watchlist descriptors are biometric data: zero them before the allocator reuses them. */
	if (seg->x)
		vg_scrub(seg->x, (size_t)seg->cap * seg->d * sizeof(float));
	if (seg->meta)
		vg_scrub(seg->meta, (size_t)seg->cap * sizeof(*seg->meta));
	free(seg->x);
	free(seg->meta);
	free(seg->hash);
	free(seg);
}

void match_bias_free(struct match_db *db, struct match_bias *b)
{
	if (!b)
		return;
	dev_release(db, &b->dev);
	vg_scrub(b->v, (size_t)b->cap * sizeof(float));
	free(b);
}

struct match_bias *match_bias_new(uint32_t cap)
{
	size_t sz = (sizeof(struct match_bias) + (size_t)cap * sizeof(float) + VG_CACHE_LINE - 1) &
		    ~(size_t)(VG_CACHE_LINE - 1);
	struct match_bias *b = aligned_alloc(VG_CACHE_LINE, sz);

	if (!b)
		return NULL;
	b->mark = 0;
	b->dev = NULL;
	b->live = 0;
	b->cap = cap;
	for (uint32_t i = 0; i < cap; i++)
		b->v[i] = INFINITY;
	return b;
}

struct match_bias *match_bias_dup(const struct match_bias *o)
{
	struct match_bias *b = match_bias_new(o->cap);

	if (!b)
		return NULL;
	b->live = o->live;
	memcpy(b->v, o->v, (size_t)o->cap * sizeof(float));
	return b;
}

struct match_seg *match_seg_new(struct match_db *db, uint32_t n_entries)
{
	struct match_seg *seg = calloc(1, sizeof(*seg));
	uint32_t cap = (n_entries + MATCH_SEG_GROUP - 1) / MATCH_SEG_GROUP * MATCH_SEG_GROUP;
	size_t xbytes;

	if (!seg)
		return NULL;
	seg->cap = cap ? cap : MATCH_SEG_GROUP;
	seg->d = db->d;
	xbytes = (size_t)seg->cap * seg->d * sizeof(float);
	seg->x = aligned_alloc(VG_CACHE_LINE, xbytes);
	seg->meta = calloc(seg->cap, sizeof(*seg->meta));
	seg->hash = calloc(seg->cap, sizeof(*seg->hash));
	if (!seg->x || !seg->meta || !seg->hash) {
		match_seg_free(db, seg);
		return NULL;
	}
	memset(seg->x, 0, xbytes);
	return seg;
}

/* Append one entry (already validated; V is what is stored: raw, or unit length under cosine). */
void match_seg_append(struct match_seg *seg, struct match_bias *b, const float *v, float bias,
		      const struct match_meta *meta)
{
	uint32_t i = seg->n++;
	float *xb = seg->x + (size_t)(i / MATCH_LANES) * seg->d * MATCH_LANES + i % MATCH_LANES;

	for (unsigned k = 0; k < seg->d; k++)
		xb[k * MATCH_LANES] = v[k];
	seg->meta[i] = *meta;
	seg->hash[i] = meta->hash;
	b->v[i] = bias;
	b->live++;
}

void match_seg_get(const struct match_seg *seg, uint32_t i, float *v /* OUT: d */)
{
	const float *xb = seg->x + (size_t)(i / MATCH_LANES) * seg->d * MATCH_LANES + i % MATCH_LANES;

	for (unsigned k = 0; k < seg->d; k++)
		v[k] = xb[k * MATCH_LANES];
}

/* ---- Snapshots ---------------------------------------------------------------------------------- */

void match_snap_free_arrays(struct match_db *db, struct match_snap *s)
{
	if (!s)
		return;
	dev_release(db, &s->dev_table);
	free(s->dev_segs);
	for (unsigned i = 0; i < s->n_shards; i++)
		free(s->shard[i].segs);
	free(s->wl);
	free(s);
}

/* A writable copy of OLD with room for EXTRA more segments per shard and one more watchlist. */
struct match_snap *match_snap_clone(struct match_db *db, const struct match_snap *old, unsigned extra)
{
	struct match_snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	*s = *old;
	s->dev_table = NULL; /* match_snap_publish() makes the draft's own */
	s->dev_segs = NULL;
	s->wl = malloc((old->n_wl + 1) * sizeof(*s->wl));
	for (unsigned i = 0; i < s->n_shards; i++)
		s->shard[i].segs = NULL;
	if (!s->wl)
		goto out_free;
	if (old->n_wl)
		memcpy(s->wl, old->wl, old->n_wl * sizeof(*s->wl));
	for (unsigned i = 0; i < s->n_shards; i++) {
		s->shard[i].segs = malloc((old->shard[i].n_segs + extra + 1) * sizeof(struct match_segv));
		if (!s->shard[i].segs)
			goto out_free;
		if (old->shard[i].n_segs)
			memcpy(s->shard[i].segs, old->shard[i].segs, old->shard[i].n_segs * sizeof(struct match_segv));
	}
	return s;
out_free:
	match_snap_free_arrays(db, s);
	return NULL;
}

/*
 * Free the segments and bias arrays of DRAFT that OLD does not hold: the writer's way to undo a
 * failed write (nothing was published).
 */
void match_snap_discard(struct match_db *db, struct match_snap *draft, const struct match_snap *old)
{
	uint64_t m = ~0ull;

	for (unsigned i = 0; i < old->n_shards; i++)
		for (unsigned j = 0; j < old->shard[i].n_segs; j++) {
			old->shard[i].segs[j].seg->mark = m;
			old->shard[i].segs[j].bias->mark = m;
		}
	for (unsigned i = 0; i < draft->n_shards; i++)
		for (unsigned j = 0; j < draft->shard[i].n_segs; j++) {
			struct match_segv *sv = &draft->shard[i].segs[j];

			if (sv->seg->mark != m)
				match_seg_free(db, sv->seg);
			if (sv->bias->mark != m)
				match_bias_free(db, sv->bias);
		}
	match_snap_free_arrays(db, draft);
}

static void retired_free(struct match_db *db, struct match_retired *r)
{
	for (size_t i = 0; i < r->n_segs; i++)
		match_seg_free(db, r->segs[i]);
	for (size_t i = 0; i < r->n_bias; i++)
		match_bias_free(db, r->bias[i]);
	match_snap_free_arrays(db, r->snap);
	free(r->segs);
	free(r->bias);
	free(r);
}

/* Free what every retired snapshot whose grace period is over held; waits only if WAIT. Writer only. */
void match_reclaim(struct match_db *db, bool wait)
{
	struct match_retired **pp = &db->retired;

	while (*pp) {
		struct match_retired *r = *pp;

		if (wait)
			synchronize(db, r->epoch);
		if (grace_over(db, r->epoch)) {
			*pp = r->next;
			retired_free(db, r);
			db->n_retired--;
		} else {
			pp = &r->next;
		}
	}
}

/*
 * Give snapshot S its device copy (match.h): a copy of each segment and bias array that has none
 * yet (what this write made: an enrolment's entries, a remove's bias arrays at 4 bytes an entry),
 * then its table (a few bytes a segment). Visits every segment, uploads only new ones. On a
 * failure S has no table, and its queries scan on the CPU; the copies made stay for the next
 * write. Writer only, before S is published: no reader can see S without its table.
 */
static void dev_build(struct match_db *db, struct match_snap *s)
{
	const struct match_device_ops *ops = db->dev_ops;
	struct match_device_seg *t;
	uint64_t *seq = NULL;
	uint32_t seq_cap = 0;
	unsigned n = 0;

	if (!ops)
		return;
	for (unsigned i = 0; i < s->n_shards; i++)
		n += s->shard[i].n_segs;
	t = malloc((n + 1) * sizeof(*t));
	s->dev_segs = malloc((n + 1) * sizeof(*s->dev_segs));
	if (!t || !s->dev_segs)
		goto out;
	n = 0;
	for (unsigned i = 0; i < s->n_shards; i++)
		for (unsigned j = 0; j < s->shard[i].n_segs; j++) {
			struct match_segv *sv = &s->shard[i].segs[j];
			struct match_seg *seg = sv->seg;

			if (!seg->dev) {
				if (seg->cap > seq_cap) {
					free(seq);
					seq_cap = seg->cap;
					seq = malloc(seq_cap * sizeof(*seq));
					if (!seq)
						goto out;
				}
				for (uint32_t e = 0; e < seg->cap; e++)
					seq[e] = seg->meta[e].seq;
				seg->dev = ops->seg_put(db->dev, seg->x, seq, seg->cap, db->d);
			}
			if (!sv->bias->dev)
				sv->bias->dev = ops->bias_put(db->dev, sv->bias->v, sv->bias->cap);
			if (!seg->dev || !sv->bias->dev)
				goto out;
			t[n] = (struct match_device_seg){ .seg = seg->dev, .bias = sv->bias->dev };
			s->dev_segs[n++] = seg;
		}
	s->dev_table = ops->table_put(db->dev, t, n);
out:
	if (!s->dev_table) {
		free(s->dev_segs);
		s->dev_segs = NULL;
	}
	free(seq);
	free(t);
}

/*
 * Publish NEW in place of the current snapshot. What only the old one held (its arrays, and the
 * segments and bias arrays NEW dropped) is retired with the epoch it was replaced at, and freed,
 * zeroed, by a later writer once every reader of that epoch has left: a writer never waits for a
 * scan. If the list of what to retire cannot be allocated, the writer waits for the grace period
 * instead (bounded by one scan).
 */
void match_snap_publish(struct match_db *db, struct match_snap *nw)
{
	struct match_snap *old = atomic_load_explicit(&db->snap, memory_order_relaxed);
	struct match_retired *r = calloc(1, sizeof(*r)), fallback = { 0 };
	size_t cap = 0;

	nw->gen = ++db->gen;
	for (unsigned i = 0; i < nw->n_shards; i++) {
		nw->shard[i].live = 0;
		for (unsigned j = 0; j < nw->shard[i].n_segs; j++) {
			nw->shard[i].segs[j].seg->mark = nw->gen;
			nw->shard[i].segs[j].bias->mark = nw->gen;
			nw->shard[i].live += nw->shard[i].segs[j].bias->live;
		}
	}
	dev_build(db, nw);
	for (unsigned i = 0; i < old->n_shards; i++)
		cap += old->shard[i].n_segs;
	if (r) {
		r->segs = malloc((cap + 1) * sizeof(*r->segs));
		r->bias = malloc((cap + 1) * sizeof(*r->bias));
		if (!r->segs || !r->bias) {
			free(r->segs);
			free(r->bias);
			free(r);
			r = NULL;
		}
	}
	atomic_store(&db->snap, nw);
	uint64_t e = atomic_fetch_add(&db->epoch, 1) + 1;

	if (!r) {
		synchronize(db, e);
		r = &fallback; /* no lists: free at once, the grace period is over */
	}
	for (unsigned i = 0; i < old->n_shards; i++)
		for (unsigned j = 0; j < old->shard[i].n_segs; j++) {
			struct match_segv *sv = &old->shard[i].segs[j];

			if (sv->seg->mark != nw->gen) {
				if (r->segs)
					r->segs[r->n_segs++] = sv->seg;
				else
					match_seg_free(db, sv->seg);
			}
			if (sv->bias->mark != nw->gen) {
				if (r->bias)
					r->bias[r->n_bias++] = sv->bias;
				else
					match_bias_free(db, sv->bias);
			}
		}
	if (r->segs) {
		r->snap = old;
		r->epoch = e;
		r->next = db->retired;
		db->retired = r;
		db->n_retired++;
	} else {
		match_snap_free_arrays(db, old);
	}
	match_reclaim(db, false);
}
