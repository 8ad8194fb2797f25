/*
 * The matcher's state and its writers: snapshots of immutable segments per shard, published
 * with one atomic store and freed after a grace period (epochs on C11 atomics, match_int.h).
 * Writers are serialised by db->writer; a scan never takes it.
 */
#include <cpuid.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"
#include "vg_pool.h"

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

static uint64_t subject_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

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

static void seg_free(struct match_db *db, struct match_seg *seg)
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

static void bias_free(struct match_db *db, struct match_bias *b)
{
	if (!b)
		return;
	dev_release(db, &b->dev);
	vg_scrub(b->v, (size_t)b->cap * sizeof(float));
	free(b);
}

static struct match_bias *bias_new(uint32_t cap)
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

static struct match_bias *bias_dup(const struct match_bias *o)
{
	struct match_bias *b = bias_new(o->cap);

	if (!b)
		return NULL;
	b->live = o->live;
	memcpy(b->v, o->v, (size_t)o->cap * sizeof(float));
	return b;
}

static struct match_seg *seg_new(struct match_db *db, uint32_t n_entries)
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
		seg_free(db, seg);
		return NULL;
	}
	memset(seg->x, 0, xbytes);
	return seg;
}

/* Append one entry (already validated; V is what is stored: raw, or unit length under cosine). */
static void seg_append(struct match_seg *seg, struct match_bias *b, const float *v, float bias,
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

static void seg_get(const struct match_seg *seg, uint32_t i, float *v /* OUT: d */)
{
	const float *xb = seg->x + (size_t)(i / MATCH_LANES) * seg->d * MATCH_LANES + i % MATCH_LANES;

	for (unsigned k = 0; k < seg->d; k++)
		v[k] = xb[k * MATCH_LANES];
}

/* ---- Snapshots ---------------------------------------------------------------------------------- */

static void snap_free_arrays(struct match_db *db, struct match_snap *s)
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
static struct match_snap *snap_clone(struct match_db *db, const struct match_snap *old, unsigned extra)
{
	struct match_snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	*s = *old;
	s->dev_table = NULL; /* publish() makes the draft's own */
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
	snap_free_arrays(db, s);
	return NULL;
}

/*
 * Free the segments and bias arrays of DRAFT that OLD does not hold: the writer's way to undo a
 * failed write (nothing was published).
 */
static void snap_discard(struct match_db *db, struct match_snap *draft, const struct match_snap *old)
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
				seg_free(db, sv->seg);
			if (sv->bias->mark != m)
				bias_free(db, sv->bias);
		}
	snap_free_arrays(db, draft);
}

static void retired_free(struct match_db *db, struct match_retired *r)
{
	for (size_t i = 0; i < r->n_segs; i++)
		seg_free(db, r->segs[i]);
	for (size_t i = 0; i < r->n_bias; i++)
		bias_free(db, r->bias[i]);
	snap_free_arrays(db, r->snap);
	free(r->segs);
	free(r->bias);
	free(r);
}

/* Free what every retired snapshot whose grace period is over held; never waits. Writer only. */
static void reclaim(struct match_db *db, bool wait)
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
static void publish(struct match_db *db, struct match_snap *nw)
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
					seg_free(db, sv->seg);
			}
			if (sv->bias->mark != nw->gen) {
				if (r->bias)
					r->bias[r->n_bias++] = sv->bias;
				else
					bias_free(db, sv->bias);
			}
		}
	if (r->segs) {
		r->snap = old;
		r->epoch = e;
		r->next = db->retired;
		db->retired = r;
		db->n_retired++;
	} else {
		snap_free_arrays(db, old);
	}
	reclaim(db, false);
}


/* Insert or update watchlist ID in a draft (its wl array has room for one more). */
static void wl_put(struct match_snap *s, uint32_t id, float threshold)
{
	struct match_wl *w = match_wl_find(s, id);
	unsigned i;

	if (w) {
		w->threshold = threshold;
		return;
	}
	for (i = s->n_wl; i > 0 && s->wl[i - 1].id > id; i--)
		s->wl[i] = s->wl[i - 1];
	s->wl[i] = (struct match_wl){ .id = id, .threshold = threshold, .live = 0 };
	s->n_wl++;
}

/* ---- Shard maintenance -------------------------------------------------------------------------- */

/* A new segment with the live entries of SRC[0..n) in order, or NULL on -ENOMEM. */
static int segs_merge(struct match_db *db, const struct match_segv *src, unsigned n, struct match_segv *out)
{
	uint32_t live = 0;
	float v[MATCH_D_MAX];

	for (unsigned i = 0; i < n; i++)
		live += src[i].bias->live;
	out->seg = seg_new(db, live);
	out->bias = out->seg ? bias_new(out->seg->cap) : NULL;
	if (!out->bias) {
		seg_free(db, out->seg);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		for (uint32_t e = 0; e < src[i].seg->n; e++) {
			if (isinf(src[i].bias->v[e]))
				continue;
			seg_get(src[i].seg, e, v);
			seg_append(out->seg, out->bias, v, src[i].bias->v[e], &src[i].seg->meta[e]);
		}
	return 0;
}

/*
 * Keep a shard's segment list short and dense after a write: drop empty segments, rewrite one
 * that is less than half live, and merge the last two while the older is at most twice the newer
 * and both fit in MATCH_SEG_TARGET (a binary counter: each entry is copied O(log) times). Copies
 * at most MATCH_SEG_TARGET entries per merge. A segment it replaces stays owned by the old
 * snapshot (freed at publication); one made here and replaced again is freed at once.
 */
static int shard_tidy(struct match_db *db, struct match_shardv *sh, uint64_t fresh)
{
	unsigned w = 0;

	for (unsigned i = 0; i < sh->n_segs; i++) {
		struct match_segv sv = sh->segs[i];

		if (sv.bias->live == 0) {
			if (sv.seg->mark == fresh)
				seg_free(db, sv.seg);
			if (sv.bias->mark == fresh)
				bias_free(db, sv.bias);
			continue;
		}
		if (sv.bias->live * 2 < sv.seg->n && sv.seg->n >= MATCH_SEG_GROUP) {
			struct match_segv nv;

			if (segs_merge(db, &sv, 1, &nv) < 0)
				return -ENOMEM;
			nv.seg->mark = fresh;
			nv.bias->mark = fresh;
			if (sv.seg->mark == fresh)
				seg_free(db, sv.seg);
			if (sv.bias->mark == fresh)
				bias_free(db, sv.bias);
			sv = nv;
		}
		sh->segs[w++] = sv;
	}
	sh->n_segs = w;
	while (sh->n_segs >= 2) {
		struct match_segv *a = &sh->segs[sh->n_segs - 2], *b = &sh->segs[sh->n_segs - 1], nv;

		if (a->bias->live + b->bias->live > MATCH_SEG_TARGET || a->bias->live > 2 * b->bias->live)
			break;
		if (segs_merge(db, a, 2, &nv) < 0)
			return -ENOMEM;
		nv.seg->mark = fresh;
		nv.bias->mark = fresh;
		for (int i = 0; i < 2; i++) {
			if (a[i].seg->mark == fresh)
				seg_free(db, a[i].seg);
			if (a[i].bias->mark == fresh)
				bias_free(db, a[i].bias);
		}
		*a = nv;
		sh->n_segs--;
	}
	return 0;
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
			seg_free(db, s->shard[i].segs[j].seg);
			bias_free(db, s->shard[i].segs[j].bias);
		}
	snap_free_arrays(db, s);
}

void match_db_close(struct match_db **dbp)
{
	struct match_db *db = *dbp;

	if (!db)
		return;
	reclaim(db, true);
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
	nw = snap_clone(db, atomic_load_explicit(&db->snap, memory_order_relaxed), 0);
	if (!nw) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	db->dev_ops = ops;
	db->dev = dev;
	publish(db, nw); /* the same watchlist, with its device copy */
out_unlock:
	pthread_mutex_unlock(&db->writer);
	return rc;
}

/* ---- Writers ------------------------------------------------------------------------------------ */

int match_watchlist_set(struct match_db *db, uint32_t id, float threshold)
{
	struct match_snap *nw;

	if (!isfinite(threshold)) {
		atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
		return -EINVAL;
	}
	pthread_mutex_lock(&db->writer);
	nw = snap_clone(db, atomic_load_explicit(&db->snap, memory_order_relaxed), 0);
	if (!nw) {
		pthread_mutex_unlock(&db->writer);
		return -ENOMEM;
	}
	wl_put(nw, id, threshold);
	publish(db, nw);
	pthread_mutex_unlock(&db->writer);
	return 0;
}

int match_enroll_locked(struct match_db *db, const struct match_watchlist_def *wl, unsigned n_wl,
			const struct match_entry *e, unsigned n, char *err, size_t errlen)
{
	struct match_snap *old = atomic_load_explicit(&db->snap, memory_order_relaxed), *nw;
	uint32_t per_shard[MATCH_SHARDS_MAX] = { 0 };
	unsigned extra = 0;
	float v[MATCH_D_MAX];
	int rc;

	/* Validate everything first: a refused batch changes nothing. */
	for (unsigned i = 0; i < n; i++) {
		size_t len = e[i].subject ? strnlen(e[i].subject, MATCH_SUBJECT_MAX + 1) : 0;
		double ss;
		bool known = false;

		if (len == 0 || len > MATCH_SUBJECT_MAX)
			return vg_errf(err, errlen, -EINVAL, "entry %u: subject must be 1..%u bytes", i, MATCH_SUBJECT_MAX);
		if (!e[i].desc)
			return vg_errf(err, errlen, -EINVAL, "entry %u: no descriptor", i);
		ss = match_desc_check(e[i].desc, db->d);
		if (ss < 0)
			return vg_errf(err, errlen, -EINVAL, "entry %u: descriptor has a NaN, infinite or out-of-range value", i);
		if (db->metric == MATCH_METRIC_COSINE && !(ss > 0))
			return vg_errf(err, errlen, -EINVAL, "entry %u: zero descriptor under cosine", i);
		for (unsigned w = 0; w < n_wl && !known; w++)
			known = wl[w].id == e[i].watchlist;
		if (!known && !match_wl_find(old, e[i].watchlist))
			return vg_errf(err, errlen, -ENOENT, "entry %u: unknown watchlist %u", i, e[i].watchlist);
	}
	/* Spread the batch: each entry to the shard with the fewest live entries. O(n * shards). */
	for (unsigned i = 0; i < n; i++) {
		unsigned best = 0;

		for (unsigned s = 1; s < db->n_shards; s++)
			if (old->shard[s].live + per_shard[s] < old->shard[best].live + per_shard[best])
				best = s;
		per_shard[best]++;
	}
	for (unsigned s = 0; s < db->n_shards; s++) {
		unsigned segs = (per_shard[s] + MATCH_SEG_TARGET - 1) / MATCH_SEG_TARGET;

		extra = segs > extra ? segs : extra;
	}
	nw = snap_clone(db, old, extra);
	if (!nw)
		return -ENOMEM;
	if (n_wl) {
		struct match_wl *grown = realloc(nw->wl, (nw->n_wl + n_wl + 1) * sizeof(*grown));

		if (!grown) {
			snap_free_arrays(db, nw);
			return -ENOMEM;
		}
		nw->wl = grown;
		for (unsigned w = 0; w < n_wl; w++)
			wl_put(nw, wl[w].id, wl[w].threshold);
	}
	uint64_t fresh = ~0ull - 1; /* the mark of segments made by this write, until published */
	unsigned next = 0;         /* the next entry to place */
	uint64_t seq = db->next_seq;

	for (unsigned s = 0; s < db->n_shards; s++) {
		uint32_t left = per_shard[s];

		while (left) {
			uint32_t cnt = left < MATCH_SEG_TARGET ? left : MATCH_SEG_TARGET;
			struct match_segv sv;

			sv.seg = seg_new(db, cnt);
			sv.bias = sv.seg ? bias_new(sv.seg->cap) : NULL;
			if (!sv.bias) {
				seg_free(db, sv.seg);
				rc = -ENOMEM;
				goto out_discard;
			}
			sv.seg->mark = fresh;
			sv.bias->mark = fresh;
			nw->shard[s].segs[nw->shard[s].n_segs++] = sv;
			/* entries go to shards in the order of the batch, so seq follows it per shard */
			for (uint32_t c = 0; c < cnt; c++) {
				const struct match_entry *en;
				struct match_meta meta = { 0 };
				double ss = 0;
				float bias = 0;

				/* shard s takes the next per_shard[s] entries of the batch, in order */
				en = &e[next++];
				ss = match_desc_check(en->desc, db->d);
				if (db->metric == MATCH_METRIC_COSINE) {
					double inv = 1.0 / sqrt(ss);

					for (unsigned k = 0; k < db->d; k++)
						v[k] = (float)(en->desc[k] * inv);
				} else {
					memcpy(v, en->desc, db->d * sizeof(float));
					bias = (float)ss;
				}
				meta.seq = seq++;
				meta.hash = subject_hash(en->subject);
				meta.watchlist = en->watchlist;
				strcpy(meta.subject, en->subject);
				seg_append(sv.seg, sv.bias, v, bias, &meta);
				match_wl_find(nw, en->watchlist)->live++;
			}
			left -= cnt;
		}
		rc = shard_tidy(db, &nw->shard[s], fresh);
		if (rc < 0)
			goto out_discard;
	}
	db->next_seq = seq;
	publish(db, nw);
	return (int)n;
out_discard:
	snap_discard(db, nw, old);
	return rc;
}

int match_enroll(struct match_db *db, const struct match_entry *e, unsigned n, char *err, size_t errlen)
{
	int rc;

	if (n > INT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&db->writer);
	rc = match_enroll_locked(db, NULL, 0, e, n, err, errlen);
	pthread_mutex_unlock(&db->writer);
	if (rc == -EINVAL || rc == -ENOENT)
		atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
	return rc;
}

/*
 * Tombstone every entry for which MATCH(meta) holds (and, if BY_HASH, whose subject hash is HASH):
 * copy the bias array of each segment that has one (4 bytes per entry), then tidy the shard.
 * Visits every entry: O(entries) per call; by subject it reads the dense hash array only, 8 bytes
 * per entry (800 KB at 100k entries), so that churn does not eat the scans' memory bandwidth.
 */
static int remove_where(struct match_db *db, bool (*match)(const struct match_meta *, const void *), const void *arg,
			bool by_hash, uint64_t hash, struct match_snap *nw, const struct match_snap *old)
{
	uint64_t fresh = ~0ull - 1;
	int removed = 0;

	for (unsigned s = 0; s < nw->n_shards; s++) {
		bool touched = false;

		for (unsigned j = 0; j < nw->shard[s].n_segs; j++) {
			struct match_segv *sv = &nw->shard[s].segs[j];
			struct match_bias *b = NULL;

			for (uint32_t i = 0; i < sv->seg->n; i++) {
				if ((by_hash && sv->seg->hash[i] != hash) || isinf(sv->bias->v[i]) ||
				    !match(&sv->seg->meta[i], arg))
					continue;
				if (!b) {
					b = bias_dup(sv->bias);
					if (!b)
						goto out_nomem;
					b->mark = fresh;
				}
				b->v[i] = INFINITY;
				b->live--;
				removed++;
				match_wl_find(nw, sv->seg->meta[i].watchlist)->live--;
			}
			if (b) {
				sv->bias = b;
				touched = true;
			}
		}
		if (touched && shard_tidy(db, &nw->shard[s], fresh) < 0)
			goto out_nomem;
	}
	return removed;
out_nomem:
	snap_discard(db, nw, old);
	return -ENOMEM;
}

struct subject_arg {
	const char *subject;
	uint64_t hash;
};

static bool match_subject(const struct match_meta *m, const void *arg)
{
	const struct subject_arg *a = arg;

	return m->hash == a->hash && strcmp(m->subject, a->subject) == 0;
}

int match_remove_subject(struct match_db *db, const char *subject)
{
	struct subject_arg a;
	struct match_snap *old, *nw;
	int rc;

	if (!subject || !subject[0] || strnlen(subject, MATCH_SUBJECT_MAX + 1) > MATCH_SUBJECT_MAX) {
		atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
		return -EINVAL;
	}
	a.subject = subject;
	a.hash = subject_hash(subject);
	pthread_mutex_lock(&db->writer);
	old = atomic_load_explicit(&db->snap, memory_order_relaxed);
	nw = snap_clone(db, old, 0);
	if (!nw) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	rc = remove_where(db, match_subject, &a, true, a.hash, nw, old);
	if (rc > 0)
		publish(db, nw);
	else if (rc == 0)
		snap_discard(db, nw, old);
out_unlock:
	pthread_mutex_unlock(&db->writer);
	return rc;
}

static bool match_watchlist(const struct match_meta *m, const void *arg)
{
	return m->watchlist == *(const uint32_t *)arg;
}

int match_remove_watchlist(struct match_db *db, uint32_t id)
{
	struct match_snap *old, *nw;
	struct match_wl *w;
	int rc;

	pthread_mutex_lock(&db->writer);
	old = atomic_load_explicit(&db->snap, memory_order_relaxed);
	if (!match_wl_find(old, id)) {
		rc = -ENOENT;
		goto out_unlock;
	}
	nw = snap_clone(db, old, 0);
	if (!nw) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	rc = remove_where(db, match_watchlist, &id, false, 0, nw, old);
	if (rc >= 0) {
		w = match_wl_find(nw, id);
		memmove(w, w + 1, (size_t)(nw->wl + nw->n_wl - (w + 1)) * sizeof(*w));
		nw->n_wl--;
		publish(db, nw);
	}
out_unlock:
	pthread_mutex_unlock(&db->writer);
	return rc;
}

int match_purge(struct match_db *db)
{
	struct match_snap *nw = calloc(1, sizeof(*nw));

	if (!nw)
		return -ENOMEM;
	pthread_mutex_lock(&db->writer);
	nw->n_shards = db->n_shards;
	publish(db, nw);
	reclaim(db, true); /* every descriptor zeroed and freed before we return */
	pthread_mutex_unlock(&db->writer);
	return 0;
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
