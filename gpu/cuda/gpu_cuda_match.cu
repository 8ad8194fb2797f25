/*
 * The matcher's scan device on CUDA (gpu_cuda.h: gpu_cuda_match_attach): match.h's
 * match_device_ops. The matcher keeps, beside each immutable segment, a copy of it here (its
 * entries in the matcher's own layout and their enrolment numbers), beside each bias array a copy
 * of that (4 bytes an entry), and per snapshot a table of the pairs, which a search walks: the
 * copy of a snapshot is complete before the snapshot is published, a write uploads only what it
 * made, and each query context searches with its own scratch and stream, several at once.
 *
 * Exactness (match.h): the key of entry x for query q is fmaf(alpha, q.x, bias) with q.x one fmaf
 * chain in dimension order from 0 and bias the matcher's own array (||x||^2 rounded from double,
 * 0 under cosine, +inf for a dead entry): the CPU kernels' keys bit for bit, so the same entries
 * win, ties going to the earlier enrolment. A cuBLAS GEMM reorders the sums: the scan is ours. The
 * checks, the cosine normalisation and the reported values are match_query.c's, op for op, in
 * double: on the device with the _rn intrinsics, which nvcc never contracts into an FMA, on the
 * host built without FMA instructions (no -march), so both round each product and each sum.
 *
 * Written once for two places: each step is a functor, `__host__ __device__`, launched as a
 * grid-stride kernel on the device, or called in a loop by the host emulation (device -1), whose
 * "device memory" is host memory (MADV_DONTDUMP). The emulation runs every step but the CUDA calls;
 * that is how this is checked where there is no GPU (tests/gpu/cuda/test_cuda_match.c, device -1).
 *
 * A search of n queries, k best, on one stream:
 *   prep    per query: refuse NaN, inf, |v| > MATCH_VALUE_MAX, zero under cosine; normalise
 *   scan    per (8 queries, entry): the keys of up to 64 queries x 32,768 entries (8 MiB)
 *   select  per (query, slice): the best k of every 128th key of those
 *   merge   per query: the 128 slices' lists into its best k so far
 *   value   per (query, rank): the metric in double, and where the entry is
 * Cost: n * N * d fmaf in the scan, 8 per load of an entry's dimension, and 8 bytes per (query,
 * entry) of keys written and read; at 17,000 x 128 the scan of 256 queries is 557 M fmaf, ~20 us
 * at an H100's fp32 rate (not yet measured: no GPU here; tests/gpu/cuda/bench_cuda_match.c measures it).
 *
 * Invariant 1: before a search returns, its copies of the descriptors (uploaded, normalised), the
 * keys, the candidate lists and the staging buffers are zeroed, on the device and in pinned
 * memory; every block of device memory is zeroed before it is freed.
 */
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <pthread.h>
#include <sys/mman.h>

#include <cuda_runtime.h>

extern "C" {
#include "../gpu_int.h"
#include "gpu_cuda.h"
#include "match.h"
}

int gpu_cuda_error(cudaError_t e, const char *what); /* gpu_cuda_device.cu */

#include "gpu_cuda_match_kern.cuh"

#define MQ_THREADS 256
#define MQ_BLOCKS_MAX 16384

/* ==== memory: the device's, or host memory in the emulation ===================================== */

enum { MQ_GALLERY = 0, MQ_SCRATCH = 1, MQ_PINNED = 2 };

struct mq_dev {
	int device;          /* -1: the host emulation */
	cudaStream_t wst;    /* the writers' uploads and releases */
	std::atomic<uint64_t> bytes;
};

/* A block of device memory behind a handle or a context. */
struct mq_mem {
	void *p;
	size_t bytes;
	int kind;
};

/*
 * Every block made, for the census (tests): under a mutex, on the writers' and context paths
 * only, never in a search. Also the fault injection's countdown.
 */
struct mq_block {
	void *p;
	size_t bytes;
	int kind, device;
};

static struct {
	pthread_mutex_t lock;
	struct mq_block *b;
	size_t n, cap;
	uint64_t uploaded, freed, freed_dirty;
	unsigned fail;
	bool audit;
} mq_reg = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0, 0, 0, false };

static int mq_cuda(cudaError_t e, const char *what)
{
	return e == cudaSuccess ? 0 : gpu_cuda_error(e, what);
}

/* Nonzero bytes of block B: read in place, or copied back from the device. -1 if it cannot. */
static long long mq_block_dirty(const struct mq_block *b)
{
	const unsigned char *h = (const unsigned char *)b->p;
	unsigned char *copy = NULL;
	long long n = 0;

	if (b->device >= 0 && b->kind != MQ_PINNED) {
		copy = (unsigned char *)malloc(b->bytes);
		if (!copy || cudaSetDevice(b->device) != cudaSuccess ||
		    cudaMemcpy(copy, b->p, b->bytes, cudaMemcpyDeviceToHost) != cudaSuccess) {
			free(copy);
			return -1;
		}
		h = copy;
	}
	for (size_t i = 0; i < b->bytes; i++)
		n += h[i] != 0;
	if (copy) {
		memset(copy, 0, b->bytes);
		free(copy);
	}
	return n;
}

static bool mq_reg_add(void *p, size_t bytes, int kind, int device)
{
	bool ok = true;

	pthread_mutex_lock(&mq_reg.lock);
	if (mq_reg.n == mq_reg.cap) {
		size_t cap = mq_reg.cap ? mq_reg.cap * 2 : 256;
		struct mq_block *b = (struct mq_block *)realloc(mq_reg.b, cap * sizeof(*b));

		if (b) {
			mq_reg.b = b;
			mq_reg.cap = cap;
		}
		ok = b != NULL;
	}
	if (ok)
		mq_reg.b[mq_reg.n++] = { p, bytes, kind, device };
	pthread_mutex_unlock(&mq_reg.lock);
	return ok;
}

/* Forget P, once zeroed; with the audit on (the emulation, or a census taken), check that it is. */
static void mq_reg_drop(void *p)
{
	pthread_mutex_lock(&mq_reg.lock);
	for (size_t i = 0; i < mq_reg.n; i++) {
		if (mq_reg.b[i].p != p)
			continue;
		if (mq_reg.audit || mq_reg.b[i].device < 0)
			mq_reg.freed_dirty += mq_block_dirty(&mq_reg.b[i]) != 0;
		mq_reg.freed++;
		mq_reg.b[i] = mq_reg.b[--mq_reg.n];
		break;
	}
	pthread_mutex_unlock(&mq_reg.lock);
}

static bool mq_fault(void)
{
	bool f;

	pthread_mutex_lock(&mq_reg.lock);
	f = mq_reg.fail > 0;
	mq_reg.fail -= f;
	pthread_mutex_unlock(&mq_reg.lock);
	return f;
}

static int mq_enter(const struct mq_dev *v)
{
	return v->device < 0 ? 0 : mq_cuda(cudaSetDevice(v->device), "cudaSetDevice");
}

/* BYTES of zeroed memory of KIND on stream ST; M->p NULL on failure. */
static void mq_alloc(struct mq_dev *v, struct mq_mem *m, size_t bytes, int kind, cudaStream_t st)
{
	void *p = NULL;

	*m = { NULL, bytes, kind };
	if (mq_fault())
		return;
	if (v->device < 0) {
		p = gpu_bio_alloc(bytes);
	} else if (kind == MQ_PINNED) {
		if (cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess)
			return;
		memset(p, 0, bytes);
		/* staging holds descriptors: keep it out of core dumps */
		(void)madvise((void *)((uintptr_t)p & ~(uintptr_t)4095), bytes, MADV_DONTDUMP);
	} else if (mq_cuda(cudaMallocAsync(&p, bytes, st), "cudaMallocAsync")) {
		return;
	} else if (mq_cuda(cudaMemsetAsync(p, 0, bytes, st), "cudaMemset") ||
		   mq_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize")) {
		cudaFreeAsync(p, st);
		return;
	}
	if (!p)
		return;
	if (!mq_reg_add(p, bytes, kind, v->device)) {
		if (v->device < 0)
			gpu_bio_free(p);
		else if (kind == MQ_PINNED)
			cudaFreeHost(p);
		else
			cudaFreeAsync(p, st);
		return;
	}
	v->bytes += bytes;
	m->p = p;
}

/* Zero M, then free it (on stream ST, after the work queued there). */
static void mq_free(struct mq_dev *v, struct mq_mem *m, cudaStream_t st)
{
	if (!m->p)
		return;
	if (v->device < 0 || m->kind == MQ_PINNED) {
		memset(m->p, 0, m->bytes);
	} else {
		cudaMemsetAsync(m->p, 0, m->bytes, st);
		cudaStreamSynchronize(st);
	}
	mq_reg_drop(m->p);
	if (v->device < 0)
		gpu_bio_free(m->p);
	else if (m->kind == MQ_PINNED)
		cudaFreeHost(m->p);
	else
		cudaFreeAsync(m->p, st);
	v->bytes -= m->bytes;
	m->p = NULL;
}

/* Copy BYTES between host and device memory (KIND: cudaMemcpyKind), queued on ST. */
static int mq_copy(const struct mq_dev *v, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
		   cudaStream_t st)
{
	if (v->device < 0)
		return memcpy(dst, src, bytes), 0;
	return mq_cuda(cudaMemcpyAsync(dst, src, bytes, kind, st), "cudaMemcpyAsync");
}

static int mq_zero(const struct mq_dev *v, void *p, size_t bytes, cudaStream_t st)
{
	if (v->device < 0)
		return memset(p, 0, bytes), 0;
	return mq_cuda(cudaMemsetAsync(p, 0, bytes, st), "cudaMemsetAsync");
}

static int mq_sync(const struct mq_dev *v, cudaStream_t st)
{
	return v->device < 0 ? 0 : mq_cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

template <class F> __global__ void mq_kernel(size_t n, F f)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		f(i);
}

/* F(i) for i in [0, N): a grid-stride kernel queued on ST, or a loop here in the emulation. */
template <class F> static int mq_each(const struct mq_dev *v, cudaStream_t st, size_t n, const F &f)
{
	size_t blocks = (n + MQ_THREADS - 1) / MQ_THREADS;

	if (v->device < 0) {
		for (size_t i = 0; i < n; i++)
			f(i);
		return 0;
	}
	if (n == 0)
		return 0;
	mq_kernel<<<(unsigned)(blocks < MQ_BLOCKS_MAX ? blocks : MQ_BLOCKS_MAX), MQ_THREADS, 0, st>>>(n, f);
	return mq_cuda(cudaGetLastError(), "matcher kernel launch");
}

/* ==== the hooks ================================================================================= */

/* A handle (match.h): a segment, a bias array or a table, and the block behind it. */
struct mq_handle {
	struct mq_mem m;
	uint32_t cap;                       /* segments and bias arrays: entries */
	const unsigned long long *seq;      /* segments: their enrolment numbers, inside m */
	uint32_t n_tiles;                   /* tables */
	const struct mq_tseg *segs;
	const struct mq_tile *tiles;
};

/* A new handle with BYTES of device memory holding SRC's (N pieces), copied by the writer. */
static struct mq_handle *mq_upload(struct mq_dev *v, const void *const *src, const size_t *len, unsigned n)
{
	struct mq_handle *h = new (std::nothrow) mq_handle();
	size_t bytes = 0, off = 0;
	int rc;

	if (!h || mq_enter(v))
		goto out_free;
	for (unsigned i = 0; i < n; i++)
		bytes += len[i];
	mq_alloc(v, &h->m, bytes, MQ_GALLERY, v->wst);
	if (!h->m.p)
		goto out_free;
	rc = 0;
	for (unsigned i = 0; i < n && !rc; off += len[i++])
		rc = mq_copy(v, (char *)h->m.p + off, src[i], len[i], cudaMemcpyHostToDevice, v->wst);
	if (rc || mq_sync(v, v->wst))
		goto out_free;
	pthread_mutex_lock(&mq_reg.lock);
	mq_reg.uploaded += bytes;
	pthread_mutex_unlock(&mq_reg.lock);
	return h;
out_free:
	if (h)
		mq_free(v, &h->m, v->wst);
	delete h;
	return NULL;
}

static void *mq_seg_put(void *dev, const float *x, const uint64_t *seq, uint32_t cap, unsigned d)
{
	const void *src[2] = { x, seq };
	size_t len[2] = { (size_t)cap * d * sizeof(float), (size_t)cap * sizeof(*seq) };
	struct mq_handle *h = mq_upload((struct mq_dev *)dev, src, len, 2);

	if (h) {
		h->cap = cap;
		h->seq = (const unsigned long long *)((const char *)h->m.p + len[0]);
	}
	return h;
}

static void *mq_bias_put(void *dev, const float *bias, uint32_t cap)
{
	const void *src[1] = { bias };
	size_t len[1] = { (size_t)cap * sizeof(float) };
	struct mq_handle *h = mq_upload((struct mq_dev *)dev, src, len, 1);

	if (h)
		h->cap = cap;
	return h;
}

/* The table: the segments' device pointers, then a tile per MQ_TILE entries (8 bytes). */
static void *mq_table_put(void *dev, const struct match_device_seg *segs, unsigned n)
{
	struct mq_dev *v = (struct mq_dev *)dev;
	struct mq_handle *h = NULL;
	struct mq_tseg *ts;
	struct mq_tile *tl;
	uint64_t n_tiles = 0;

	for (unsigned i = 0; i < n; i++)
		n_tiles += ((const struct mq_handle *)segs[i].seg)->cap / MQ_TILE;
	if (n_tiles * MQ_TILE >= MQ_NONE)
		return NULL;
	ts = (struct mq_tseg *)malloc(n * sizeof(*ts) + n_tiles * sizeof(*tl) + 1);
	if (!ts)
		return NULL;
	tl = (struct mq_tile *)(ts + n);
	for (unsigned i = 0, t = 0; i < n; i++) {
		const struct mq_handle *s = (const struct mq_handle *)segs[i].seg;
		const struct mq_handle *b = (const struct mq_handle *)segs[i].bias;

		ts[i] = { (const float *)s->m.p, (const float *)b->m.p, s->seq };
		for (uint32_t e = 0; e < s->cap; e += MQ_TILE)
			tl[t++] = { i, e };
	}
	if (n == 0) {
		h = new (std::nothrow) mq_handle(); /* an empty watchlist: a table of nothing */
	} else {
		const void *src[1] = { ts };
		size_t len[1] = { n * sizeof(*ts) + n_tiles * sizeof(*tl) };

		h = mq_upload(v, src, len, 1);
	}
	if (h) {
		h->n_tiles = (uint32_t)n_tiles;
		h->segs = (const struct mq_tseg *)h->m.p;
		h->tiles = h->m.p ? (const struct mq_tile *)(h->segs + n) : NULL;
	}
	free(ts);
	return h;
}

static void mq_release(void *dev, void *handle)
{
	struct mq_dev *v = (struct mq_dev *)dev;
	struct mq_handle *h = (struct mq_handle *)handle;

	mq_enter(v);
	mq_free(v, &h->m, v->wst);
	delete h;
}

/* A context's scratch: device memory for its searches, pinned memory to stage them. */
struct mq_ctx {
	unsigned d, max_batch;
	int cosine;
	cudaStream_t st;
	struct mq_mem dm, hm;
	float *dq;                       /* max_batch x d: host queries, uploaded */
	float *qn;                       /* max_batch x d: what the scan reads */
	float *keys;                     /* MQ_QCHUNK x MQ_ECHUNK */
	struct mq_cand *part;            /* MQ_QCHUNK x MQ_SLICES x MATCH_K_MAX */
	struct mq_cand *best;            /* max_batch x MATCH_K_MAX */
	struct match_device_hit *out;    /* max_batch x MATCH_K_MAX */
	unsigned *got;                   /* max_batch */
	float *hq;                       /* pinned: as dq, out, got */
	struct match_device_hit *hout;
	unsigned *hgot;
};

/* Carve consecutive arrays from one block: OFF advances by BYTES, rounded to 256. */
static void *mq_carve(const struct mq_mem *m, size_t *off, size_t bytes)
{
	void *p = m->p ? (char *)m->p + *off : NULL;

	*off += (bytes + 255) & ~(size_t)255;
	return p;
}

static void mq_ctx_close(void *dev, void *ctxp)
{
	struct mq_dev *v = (struct mq_dev *)dev;
	struct mq_ctx *c = (struct mq_ctx *)ctxp;

	mq_enter(v);
	mq_free(v, &c->dm, c->st);
	mq_free(v, &c->hm, c->st);
	if (c->st)
		cudaStreamDestroy(c->st);
	delete c;
}

static void *mq_ctx_open(void *dev, unsigned d, enum match_metric metric, unsigned max_batch)
{
	struct mq_dev *v = (struct mq_dev *)dev;
	struct mq_ctx *c = new (std::nothrow) mq_ctx();
	size_t qf = (size_t)max_batch * d * sizeof(float), kb = (size_t)max_batch * MATCH_K_MAX;
	size_t doff = 0, hoff = 0;

	if (!c)
		return NULL;
	c->d = d;
	c->max_batch = max_batch;
	c->cosine = metric == MATCH_METRIC_COSINE;
	if (mq_enter(v) ||
	    (v->device >= 0 && mq_cuda(cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking), "cudaStreamCreate")))
		goto out_close;
	for (int pass = 0; pass < 2; pass++) { /* sizes, then pointers */
		doff = hoff = 0;
		c->dq = (float *)mq_carve(&c->dm, &doff, qf);
		c->qn = (float *)mq_carve(&c->dm, &doff, qf);
		c->keys = (float *)mq_carve(&c->dm, &doff, (size_t)MQ_QCHUNK * MQ_ECHUNK * sizeof(float));
		c->part = (struct mq_cand *)mq_carve(&c->dm, &doff,
						     (size_t)MQ_QCHUNK * MQ_SLICES * MATCH_K_MAX * sizeof(struct mq_cand));
		c->best = (struct mq_cand *)mq_carve(&c->dm, &doff, kb * sizeof(struct mq_cand));
		c->out = (struct match_device_hit *)mq_carve(&c->dm, &doff, kb * sizeof(struct match_device_hit));
		c->got = (unsigned *)mq_carve(&c->dm, &doff, max_batch * sizeof(unsigned));
		c->hq = (float *)mq_carve(&c->hm, &hoff, qf);
		c->hout = (struct match_device_hit *)mq_carve(&c->hm, &hoff, kb * sizeof(struct match_device_hit));
		c->hgot = (unsigned *)mq_carve(&c->hm, &hoff, max_batch * sizeof(unsigned));
		if (pass == 0) {
			mq_alloc(v, &c->dm, doff, MQ_SCRATCH, c->st);
			mq_alloc(v, &c->hm, hoff, MQ_PINNED, c->st);
			if (!c->dm.p || !c->hm.p)
				goto out_close;
		}
	}
	return c;
out_close:
	mq_ctx_close(v, c);
	return NULL;
}

/*
 * The search (match.h's contract), all queued on the context's stream, then one wait. A bad
 * descriptor is found by prep and reported with the results: the other steps run on regardless
 * (on garbage, harmlessly) rather than make the common case wait twice.
 */
static int mq_search(void *dev, void *ctxp, const void *table, const float *q, bool q_host, unsigned n, unsigned k,
		     struct match_device_hit *hit, unsigned *got)
{
	struct mq_dev *v = (struct mq_dev *)dev;
	struct mq_ctx *c = (struct mq_ctx *)ctxp;
	const struct mq_handle *t = (const struct mq_handle *)table;
	unsigned d = c->d, rows = n < MQ_QCHUNK ? n : MQ_QCHUNK;
	size_t qbytes = (size_t)n * d * sizeof(float), kb = (size_t)n * MATCH_K_MAX;
	uint32_t echunk_used = t->n_tiles * MQ_TILE < MQ_ECHUNK ? t->n_tiles * MQ_TILE : MQ_ECHUNK;
	cudaStream_t st = c->st;
	int rc;

	if (n == 0 || n > c->max_batch || k == 0 || k > MATCH_K_MAX)
		return -EINVAL;
	rc = mq_enter(v);
	if (!rc && q_host) {
		memcpy(c->hq, q, qbytes);
		rc = mq_copy(v, c->dq, c->hq, qbytes, cudaMemcpyHostToDevice, st);
		q = c->dq;
	}
	if (!rc)
		rc = mq_each(v, st, n, mq_prep{ q, c->qn, c->got, d, c->cosine });
	if (!rc)
		rc = mq_each(v, st, n, mq_init{ c->best, k });
	for (unsigned q0 = 0; q0 < n && !rc; q0 += MQ_QCHUNK) {
		unsigned m = n - q0 < MQ_QCHUNK ? n - q0 : MQ_QCHUNK;

		for (uint32_t tile0 = 0; tile0 < t->n_tiles && !rc; tile0 += MQ_ECHUNK / MQ_TILE) {
			uint32_t pos0 = tile0 * MQ_TILE, len = t->n_tiles * MQ_TILE - pos0;
			uint32_t slices;

			len = len < MQ_ECHUNK ? len : MQ_ECHUNK;
			slices = len < MQ_SLICES ? len : MQ_SLICES;
			rc = mq_each(v, st, (size_t)(m + MQ_QT - 1) / MQ_QT * len,
				     mq_scan{ t->segs, t->tiles, c->qn + (size_t)q0 * d, c->keys, pos0, len, m, d,
					      c->cosine ? -1.0f : -2.0f });
			if (!rc)
				rc = mq_each(v, st, (size_t)m * slices,
					     mq_select{ c->keys, t->segs, t->tiles, c->part, pos0, len, slices, k });
			if (!rc)
				rc = mq_each(v, st, m, mq_merge{ c->part, c->best + (size_t)q0 * MATCH_K_MAX, slices, k });
		}
	}
	if (!rc)
		rc = mq_each(v, st, (size_t)n * k,
			     mq_value{ c->best, t->segs, t->tiles, c->qn, c->out, c->got, d, k, !c->cosine });
	if (!rc)
		rc = mq_copy(v, c->hout, c->out, kb * sizeof(*c->out), cudaMemcpyDeviceToHost, st);
	if (!rc)
		rc = mq_copy(v, c->hgot, c->got, n * sizeof(*c->got), cudaMemcpyDeviceToHost, st);
	/* The batch retires: every copy of its descriptors, and what was computed from them. */
	mq_zero(v, c->qn, qbytes, st);
	if (q_host)
		mq_zero(v, c->dq, qbytes, st);
	if (echunk_used)
		mq_zero(v, c->keys, ((size_t)(rows - 1) * MQ_ECHUNK + echunk_used) * sizeof(float), st);
	mq_zero(v, c->part, (size_t)rows * MQ_SLICES * MATCH_K_MAX * sizeof(*c->part), st);
	mq_zero(v, c->best, kb * sizeof(*c->best), st);
	mq_zero(v, c->out, kb * sizeof(*c->out), st);
	mq_zero(v, c->got, n * sizeof(*c->got), st);
	if (mq_sync(v, st) && !rc)
		rc = -EIO;
	for (unsigned j = 0; j < n && !rc; j++)
		if (c->hgot[j] == MQ_BAD)
			rc = -EINVAL;
	if (!rc) {
		memcpy(hit, c->hout, kb * sizeof(*hit));
		memcpy(got, c->hgot, n * sizeof(*got));
	}
	memset(c->hq, 0, qbytes);
	memset(c->hout, 0, kb * sizeof(*c->hout));
	memset(c->hgot, 0, n * sizeof(*c->hgot));
	return rc;
}

static uint64_t mq_bytes(void *dev)
{
	return ((struct mq_dev *)dev)->bytes.load();
}

static void mq_close(void *dev)
{
	struct mq_dev *v = (struct mq_dev *)dev;

	if (v->wst) {
		mq_enter(v);
		cudaStreamSynchronize(v->wst);
		cudaStreamDestroy(v->wst);
	}
	delete v;
}

static const struct match_device_ops mq_ops = {
	.seg_put = mq_seg_put,
	.bias_put = mq_bias_put,
	.table_put = mq_table_put,
	.release = mq_release,
	.ctx_open = mq_ctx_open,
	.ctx_close = mq_ctx_close,
	.search = mq_search,
	.bytes = mq_bytes,
	.close = mq_close,
};

static int mq_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

extern "C" int gpu_cuda_match_attach(struct match_db *db, int device, char *err, size_t errlen)
{
	struct mq_dev *v;
	int rc;

	if (device < -1)
		return mq_errf(err, errlen, -EINVAL, "device %d: a CUDA device index, or -1", device);
	if (device >= 0) {
		int count = gpu_cuda_device_count();

		if (count < 0)
			return mq_errf(err, errlen, count, "%s", gpu_cuda_last_error());
		if (device >= count)
			return mq_errf(err, errlen, -ENODEV, "no CUDA device %d (%d here)", device, count);
	}
	v = new (std::nothrow) mq_dev();
	if (!v)
		return -ENOMEM;
	v->device = device;
	v->wst = NULL;
	v->bytes = 0;
	if (device >= 0 && (mq_enter(v) || mq_cuda(cudaStreamCreateWithFlags(&v->wst, cudaStreamNonBlocking),
						   "cudaStreamCreate"))) {
		mq_close(v);
		return mq_errf(err, errlen, -EIO, "%s", gpu_cuda_last_error());
	}
	rc = match_db_set_device(db, &mq_ops, v, err, errlen);
	if (rc < 0)
		mq_close(v);
	return rc;
}

extern "C" void gpu_cuda_match_census(struct gpu_cuda_match_census *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&mq_reg.lock);
	mq_reg.audit = true;
	for (size_t i = 0; i < mq_reg.n; i++) {
		const struct mq_block *b = &mq_reg.b[i];

		if (b->kind == MQ_GALLERY) {
			out->gallery_bytes += b->bytes;
		} else {
			long long dirty = mq_block_dirty(b);

			out->scratch_bytes += b->bytes;
			out->scratch_dirty += dirty < 0 ? b->bytes : (uint64_t)dirty;
		}
	}
	out->uploaded_bytes = mq_reg.uploaded;
	out->freed = mq_reg.freed;
	out->freed_dirty = mq_reg.freed_dirty;
	pthread_mutex_unlock(&mq_reg.lock);
}

extern "C" void gpu_cuda_match_fail_allocs(unsigned n)
{
	pthread_mutex_lock(&mq_reg.lock);
	mq_reg.fail = n;
	pthread_mutex_unlock(&mq_reg.lock);
}
