/*
 * Queries: a context per querying thread, with its reader slot, its workers and its scratch.
 * The caller scans the shards of thread 0 itself; workers 1..n-1 scan theirs; the partial top-k
 * are merged by (key, seq), so the answer does not depend on the thread count or the order.
 */
#include <errno.h>
#include <immintrin.h>
#include <linux/futex.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "match_int.h"
#include "vg_clock.h"
#include "vg_pool.h"

/* How long an idle worker polls before it sleeps: ~20 us, shorter than one batch's scan at 16k. */
#define MATCH_SPIN 2000

struct match_worker {
	struct match_ctx *ctx;
	unsigned index;
	pthread_t thread;
	_Atomic uint32_t go;       /* job generation (futex word) */
	_Atomic uint32_t done;     /* last generation finished */
	_Atomic int sleeping;
} VG_CACHE_ALIGNED;

struct match_ctx {
	struct match_db *db;
	int slot;
	unsigned n_threads, max_batch;
	float *qbuf;                 /* max_batch * d: unit-length queries under cosine */
	struct match_topk *tk;       /* n_threads * max_batch */
	struct match_worker *w;      /* n_threads - 1 */
	void *dctx;                  /* the scan device's scratch (match_device_ops.ctx_open), or NULL */
	struct match_device_hit *dhit; /* max_batch * MATCH_K_MAX: a device search's answer */
	unsigned *dgot;              /* max_batch */
	uint32_t gen;
	_Atomic int stop;
	/* the job, written before go is bumped */
	struct match_snap *snap;
	const float *q;
	unsigned nq, k;
	float alpha;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
	_mm_pause();
}

/* Scan the shards of thread T into its top-k rows. No lock, no syscall, no allocation. */
static void scan_share(struct match_ctx *c, unsigned t)
{
	struct match_topk *tk = c->tk + (size_t)t * c->max_batch;
	const struct match_snap *s = c->snap;
	struct match_db *db = c->db;

	for (unsigned j = 0; j < c->nq; j++)
		match_topk_init(&tk[j], c->k);
	for (unsigned sh = t; sh < s->n_shards; sh += c->n_threads) {
		uint64_t t0 = vg_clock_ns(); /* vDSO, no syscall */

		for (unsigned g = 0; g < s->shard[sh].n_segs; g++)
			db->scan(&s->shard[sh].segs[g], db->d, c->q, c->nq, c->alpha, tk);
		atomic_fetch_add_explicit(&db->shard_ns[sh].ns, vg_clock_ns() - t0, memory_order_relaxed);
	}
}

static void *worker_main(void *arg)
{
	struct match_worker *w = arg;
	struct match_ctx *c = w->ctx;
	uint32_t seen = 0;

	for (;;) {
		uint32_t g = atomic_load_explicit(&w->go, memory_order_acquire);

		for (int i = 0; g == seen && i < MATCH_SPIN; i++) {
			cpu_relax();
			g = atomic_load_explicit(&w->go, memory_order_acquire);
		}
		if (g == seen) {
			atomic_store(&w->sleeping, 1);
			if (atomic_load(&w->go) == seen)
				futex_wait(&w->go, seen);
			atomic_store(&w->sleeping, 0);
			continue;
		}
		seen = g;
		if (atomic_load_explicit(&c->stop, memory_order_acquire))
			break;
		scan_share(c, w->index);
		atomic_store_explicit(&w->done, g, memory_order_release);
	}
	return NULL;
}

static void kick(struct match_worker *w, uint32_t gen)
{
	atomic_store(&w->go, gen);
	if (atomic_load(&w->sleeping))
		futex_wake(&w->go);
}

int match_ctx_open(struct match_ctx **out, struct match_db *db, unsigned n_threads, unsigned max_batch)
{
	struct match_ctx *c;
	unsigned started = 0;
	int rc = -ENOMEM;

	if (n_threads < 1 || n_threads > MATCH_THREADS_MAX || max_batch < 1 || max_batch > 65536)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->db = db;
	c->n_threads = n_threads;
	c->max_batch = max_batch;
	c->qbuf = aligned_alloc(VG_CACHE_LINE, (size_t)max_batch * db->d * sizeof(float));
	c->tk = calloc((size_t)n_threads * max_batch, sizeof(*c->tk));
	if (n_threads > 1)
		c->w = aligned_alloc(VG_CACHE_LINE, (n_threads - 1) * sizeof(*c->w));
	if (db->dev_ops) {
		c->dhit = calloc((size_t)max_batch * MATCH_K_MAX, sizeof(*c->dhit));
		c->dgot = calloc(max_batch, sizeof(*c->dgot));
		if (!c->dhit || !c->dgot)
			goto out_free;
	}
	if (!c->qbuf || !c->tk || (n_threads > 1 && !c->w))
		goto out_free;
	c->slot = match_reader_acquire(db);
	if (c->slot < 0) {
		rc = c->slot;
		goto out_free;
	}
	for (unsigned i = 0; i + 1 < n_threads; i++) {
		struct match_worker *w = &c->w[i];

		memset(w, 0, sizeof(*w));
		w->ctx = c;
		w->index = i + 1;
		if (pthread_create(&w->thread, NULL, worker_main, w)) {
			rc = -EAGAIN;
			goto out_stop_workers;
		}
		started++;
	}
	/* Without device scratch this context still works: on the CPU, counted as fallbacks. */
	if (db->dev_ops)
		c->dctx = db->dev_ops->ctx_open(db->dev, db->d, db->metric, max_batch);
	*out = c;
	return 0;
out_stop_workers:
	atomic_store(&c->stop, 1);
	for (unsigned i = 0; i < started; i++) {
		kick(&c->w[i], 1);
		pthread_join(c->w[i].thread, NULL);
	}
	match_reader_release(db, c->slot);
out_free:
	free(c->dhit);
	free(c->dgot);
	free(c->w);
	free(c->tk);
	free(c->qbuf);
	free(c);
	return rc;
}

void match_ctx_close(struct match_ctx **cp)
{
	struct match_ctx *c = *cp;

	if (!c)
		return;
	atomic_store_explicit(&c->stop, 1, memory_order_release);
	c->gen++;
	for (unsigned i = 0; i + 1 < c->n_threads; i++) {
		kick(&c->w[i], c->gen);
		pthread_join(c->w[i].thread, NULL);
	}
	match_reader_release(c->db, c->slot);
	if (c->dctx)
		c->db->dev_ops->ctx_close(c->db->dev, c->dctx);
	free(c->dhit);
	free(c->dgot);
	/* The scratch held queries (biometric data of passers-by): zero it. */
	vg_scrub(c->qbuf, (size_t)c->max_batch * c->db->d * sizeof(float));
	vg_scrub(c->tk, (size_t)c->n_threads * c->max_batch * sizeof(*c->tk));
	free(c->w);
	free(c->tk);
	free(c->qbuf);
	free(c);
	*cp = NULL;
}


/* The reported value, in double, straight from the stored vector: k * d work per query. */
static float value_of(const struct match_db *db, const struct match_seg *seg, uint32_t idx, const float *q)
{
	const float *xb = seg->x + (size_t)(idx / MATCH_LANES) * db->d * MATCH_LANES + idx % MATCH_LANES;
	double s = 0;

	for (unsigned k = 0; k < db->d; k++) {
		double x = xb[k * MATCH_LANES];

		if (db->metric == MATCH_METRIC_L2)
			s += (q[k] - x) * (q[k] - x);
		else
			s += q[k] * x;
	}
	return db->metric == MATCH_METRIC_L2 ? (float)sqrt(s) : (float)s;
}

/* Hit H: entry IDX of SEG in snapshot S, with its VALUE; passes by the snapshot's threshold. */
static void hit_fill(const struct match_db *db, const struct match_snap *s, const struct match_seg *seg, uint32_t idx,
		     float value, struct match_hit *h)
{
	const struct match_meta *m = &seg->meta[idx];
	const struct match_wl *wl = match_wl_find(s, m->watchlist);

	memcpy(h->subject, m->subject, sizeof(h->subject));
	h->watchlist = m->watchlist;
	h->seq = m->seq;
	h->value = value;
	h->pass = wl && (db->metric == MATCH_METRIC_L2 ? value <= wl->threshold : value >= wl->threshold);
}

/* Arguments as match_query() takes them; counts a refusal. */
static bool args_ok(struct match_ctx *c, const float *q, unsigned n, unsigned k, const struct match_result *out)
{
	if (n > c->max_batch || k < 1 || k > MATCH_K_MAX || !q || !out) {
		atomic_fetch_add_explicit(&c->db->refused, 1, memory_order_relaxed);
		return false;
	}
	return true;
}

static void count_batch(struct match_db *db, unsigned n, bool on_device)
{
	atomic_fetch_add_explicit(&db->queries, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&db->batches, 1, memory_order_relaxed);
	if (on_device)
		atomic_fetch_add_explicit(&db->dev_queries, n, memory_order_relaxed);
}

/*
 * N queries at Q (host memory where Q_HOST) on the device copy of the current snapshot: 0, or
 * -ENODEV (no copy), -EINVAL (a bad descriptor), -EIO; OUT is written only on 0. No lock, no
 * allocation: the device's search uses the context's scratch.
 */
static int device_scan(struct match_ctx *c, const float *q, bool q_host, unsigned n, unsigned k,
		       struct match_result *out)
{
	struct match_db *db = c->db;
	struct match_snap *s = match_read_lock(db, c->slot);
	int rc = -ENODEV;

	if (s->dev_table)
		rc = db->dev_ops->search(db->dev, c->dctx, s->dev_table, q, q_host, n, k, c->dhit, c->dgot);
	if (rc == 0) {
		for (unsigned j = 0; j < n; j++) {
			const struct match_device_hit *dh = &c->dhit[(size_t)j * MATCH_K_MAX];

			out[j].n = c->dgot[j];
			for (unsigned i = 0; i < c->dgot[j]; i++)
				hit_fill(db, s, s->dev_segs[dh[i].seg], dh[i].idx, dh[i].value, &out[j].hit[i]);
		}
		/* the distances of passers-by to the watchlist: n * k * 12 bytes */
		vg_scrub(c->dhit, (size_t)n * MATCH_K_MAX * sizeof(*c->dhit));
	}
	match_read_unlock(db, c->slot);
	if (rc == -EIO)
		atomic_fetch_add_explicit(&db->dev_errors, 1, memory_order_relaxed);
	return rc;
}

int match_query_device(struct match_ctx *c, const float *q, unsigned n, unsigned k, struct match_result *out)
{
	int rc;

	if (!args_ok(c, q, n, k, out))
		return -EINVAL;
	if (!c->dctx)
		return -ENODEV;
	if (n == 0)
		return 0;
	rc = device_scan(c, q, false, n, k, out);
	if (rc == -EINVAL)
		atomic_fetch_add_explicit(&c->db->refused, 1, memory_order_relaxed);
	if (rc < 0)
		return rc;
	count_batch(c->db, n, true);
	return (int)n;
}

int match_query(struct match_ctx *c, const float *q, unsigned n, unsigned k, struct match_result *out)
{
	struct match_db *db = c->db;
	unsigned d = db->d;

	if (!args_ok(c, q, n, k, out))
		return -EINVAL;
	for (unsigned j = 0; j < n; j++) {
		double ss = match_desc_check(q + (size_t)j * d, d);

		if (ss < 0 || (db->metric == MATCH_METRIC_COSINE && !(ss > 0))) {
			atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
			return -EINVAL;
		}
	}
	if (n == 0)
		return 0;
	/* The device normalises the raw descriptors itself, as below, to the same bits. */
	if (c->dctx && device_scan(c, q, true, n, k, out) == 0) {
		count_batch(db, n, true);
		return (int)n;
	}
	if (db->dev_ops)
		atomic_fetch_add_explicit(&db->dev_fallbacks, n, memory_order_relaxed);
	if (db->metric == MATCH_METRIC_COSINE) {
		for (unsigned j = 0; j < n; j++) {
			double inv = 1.0 / sqrt(match_desc_check(q + (size_t)j * d, d));

			for (unsigned i = 0; i < d; i++)
				c->qbuf[(size_t)j * d + i] = (float)(q[(size_t)j * d + i] * inv);
		}
	}
	c->q = db->metric == MATCH_METRIC_COSINE ? c->qbuf : q;
	c->nq = n;
	c->k = k;
	c->alpha = db->metric == MATCH_METRIC_COSINE ? -1.0f : -2.0f;
	c->snap = match_read_lock(db, c->slot);
	c->gen++;
	for (unsigned i = 0; i + 1 < c->n_threads; i++)
		kick(&c->w[i], c->gen);
	scan_share(c, 0);
	for (unsigned i = 0; i + 1 < c->n_threads; i++) {
		for (unsigned spins = 0; atomic_load_explicit(&c->w[i].done, memory_order_acquire) != c->gen; spins++) {
			if (spins < MATCH_SPIN)
				cpu_relax();
			else
				sched_yield(); /* the worker was descheduled: give it the core */
		}
	}
	for (unsigned j = 0; j < n; j++) {
		struct match_topk *t = &c->tk[j];

		for (unsigned th = 1; th < c->n_threads; th++) {
			const struct match_topk *o = &c->tk[(size_t)th * c->max_batch + j];

			for (unsigned i = 0; i < o->n; i++)
				match_topk_insert(t, o->c[i].key, o->c[i].seq, o->c[i].seg, o->c[i].idx);
		}
		out[j].n = t->n;
		for (unsigned i = 0; i < t->n; i++)
			hit_fill(db, c->snap, t->c[i].seg, t->c[i].idx,
				 value_of(db, t->c[i].seg, t->c[i].idx, c->q + (size_t)j * d), &out[j].hit[i]);
	}
	match_read_unlock(db, c->slot);
	c->snap = NULL;
	/* Invariant 1: the unit-length copies are passers-by's descriptors; n * d * 4 bytes, << the scan. */
	if (db->metric == MATCH_METRIC_COSINE)
		vg_scrub(c->qbuf, (size_t)n * d * sizeof(float));
	count_batch(db, n, false);
	return (int)n;
}
