/*
 * The matcher's scan device, its search steps (gpu_cuda_match.cu's top comment has the search and
 * its exactness): the layouts a search reads and each step as a `__host__ __device__` functor, so
 * that gpu_cuda_match.cu launches them as grid-stride kernels on the device or calls them in a loop
 * in the host emulation (device -1). Kept apart from the memory, the registry and the match.h
 * device ops so that what runs on the device reads on its own, as gpu_cuda_kern.cuh does for the
 * face nets. Only gpu_cuda_match.cu includes this.
 */
#ifndef GPU_CUDA_MATCH_KERN_CUH
#define GPU_CUDA_MATCH_KERN_CUH

#include <cmath>
#include <cstddef>
#include <cstdint>

extern "C" {
#include "match.h"
}

#define MQ_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define MQ_UNROLL _Pragma("unroll")
#else
#define MQ_UNROLL
#endif

#define MQ_LANES MATCH_DEVICE_LANES
#define MQ_TILE MATCH_DEVICE_GROUP /* entries per tile: a segment's capacity is a multiple */
#define MQ_QT 8                    /* queries per scan thread: 8 fmaf per load of x */
#define MQ_QCHUNK 64               /* queries whose keys are held at once */
#define MQ_ECHUNK 32768            /* entries whose keys are held at once, a multiple of MQ_TILE */
#define MQ_SLICES 128              /* candidate lists per query and chunk */
#define MQ_NONE 0xffffffffu        /* no entry */
#define MQ_BAD 0xffffffffu         /* got[j] of a refused descriptor */

/* ==== the search's steps, for the device and the emulation ==================================== */

/*
 * The double ops of match_query.c, each rounded once on both sides: on the device the _rn
 * intrinsic (never contracted into an FMA), on the host the plain op (built without FMA).
 */
#ifdef __CUDA_ARCH__
#define MQ_RN(on_device, on_host) (on_device)
#else
#define MQ_RN(on_device, on_host) (on_host)
#endif
MQ_HD double mq_dadd(double a, double b) { return MQ_RN(__dadd_rn(a, b), a + b); }
MQ_HD double mq_dsub(double a, double b) { return MQ_RN(__dsub_rn(a, b), a - b); }
MQ_HD double mq_dmul(double a, double b) { return MQ_RN(__dmul_rn(a, b), a * b); }
MQ_HD double mq_ddiv(double a, double b) { return MQ_RN(__ddiv_rn(a, b), a / b); }
MQ_HD double mq_dsqrt(double a) { return MQ_RN(__dsqrt_rn(a), sqrt(a)); }

/* One segment of a table: device pointers into its seg_put and bias_put copies. */
struct mq_tseg {
	const float *x;
	const float *bias;
	const unsigned long long *seq;
};

/* MQ_TILE entries of segment SEG from entry FIRST: a table position is tile * MQ_TILE + lane. */
struct mq_tile {
	uint32_t seg, first;
};

/* A candidate: its key, its table position, its enrolment number (the tie-break). */
struct mq_cand {
	float key;
	uint32_t pos;
	unsigned long long seq;
};

struct mq_at {
	uint32_t seg, idx;
};

MQ_HD struct mq_at mq_where(const struct mq_tile *tiles, uint32_t pos)
{
	struct mq_tile t = tiles[pos / MQ_TILE];

	return { t.seg, t.first + pos % MQ_TILE };
}

/* Entry IDX's dimension k is at [k * MQ_LANES] (match.h's layout). */
MQ_HD const float *mq_x(const struct mq_tseg &s, uint32_t idx, unsigned d)
{
	return s.x + (size_t)(idx / MQ_LANES) * d * MQ_LANES + idx % MQ_LANES;
}

/* match_topk_insert's order: lower key, then earlier enrolment. */
MQ_HD bool mq_before(const struct mq_cand &a, const struct mq_cand &b)
{
	return a.key < b.key || (a.key == b.key && a.seq < b.seq);
}

MQ_HD void mq_clear(struct mq_cand *l, unsigned k)
{
	for (unsigned t = 0; t < k; t++)
		l[t] = { INFINITY, MQ_NONE, ~0ull };
}

/* Into sorted list L of K (empty slots +inf, last), if C ranks within it. At most k moves. */
MQ_HD void mq_insert(struct mq_cand *l, unsigned k, const struct mq_cand &c)
{
	unsigned p = k - 1;

	if (!mq_before(c, l[p]))
		return;
	for (; p > 0 && mq_before(c, l[p - 1]); p--)
		l[p] = l[p - 1];
	l[p] = c;
}

/* Per query: match_query's checks and normalisation; QN gets what the scan reads. */
struct mq_prep {
	const float *q;
	float *qn;
	unsigned *got;
	unsigned d;
	int cosine;

	MQ_HD void operator()(size_t j) const
	{
		const float *v = q + j * d;
		float *o = qn + j * d;
		double ss = 0.0, inv = 1.0;
		bool bad = false;

		for (unsigned k = 0; k < d; k++) {
			bad |= !(fabsf(v[k]) <= MATCH_VALUE_MAX); /* NaN too */
			ss = mq_dadd(ss, mq_dmul(v[k], v[k]));
		}
		if (cosine) {
			bad |= !(ss > 0.0);
			inv = bad ? 0.0 : mq_ddiv(1.0, mq_dsqrt(ss));
		}
		for (unsigned k = 0; k < d; k++)
			o[k] = cosine ? (float)mq_dmul(v[k], inv) : v[k];
		got[j] = bad ? MQ_BAD : 0;
	}
};

struct mq_init {
	struct mq_cand *best;
	unsigned k;

	MQ_HD void operator()(size_t j) const { mq_clear(best + j * MATCH_K_MAX, k); }
};

/*
 * Per (group of MQ_QT queries, entry of the chunk): their keys, as match_scan_ref computes them
 * (a dead entry is +inf: never a candidate). Consecutive threads read consecutive entries of a
 * block of 16, which is 64 contiguous bytes per dimension.
 */
struct mq_scan {
	const struct mq_tseg *segs;
	const struct mq_tile *tiles;
	const float *q;      /* the query chunk's first row */
	float *keys;         /* MQ_ECHUNK per query */
	uint32_t pos0, len;  /* the entry chunk: table positions [pos0, pos0 + len) */
	unsigned m, d;       /* queries in the chunk */
	float alpha;

	MQ_HD void operator()(size_t i) const
	{
		unsigned j0 = (unsigned)(i / len) * MQ_QT, nt = m - j0 < MQ_QT ? m - j0 : MQ_QT;
		uint32_t p = (uint32_t)(i % len);
		struct mq_at a = mq_where(tiles, pos0 + p);
		const struct mq_tseg s = segs[a.seg];
		float b = s.bias[a.idx], acc[MQ_QT];

		MQ_UNROLL
		for (unsigned jj = 0; jj < MQ_QT; jj++)
			acc[jj] = 0.0f;
		if (b != INFINITY) {
			const float *x = mq_x(s, a.idx, d);

			for (unsigned k = 0; k < d; k++) {
				float xv = x[(size_t)k * MQ_LANES];

				MQ_UNROLL
				for (unsigned jj = 0; jj < MQ_QT; jj++)
					if (jj < nt)
						acc[jj] = fmaf(q[(size_t)(j0 + jj) * d + k], xv, acc[jj]);
			}
		}
		for (unsigned jj = 0; jj < nt; jj++)
			keys[(size_t)(j0 + jj) * MQ_ECHUNK + p] = b != INFINITY ? fmaf(alpha, acc[jj], b) : INFINITY;
	}
};

/* Per (query of the chunk, slice): the best k of keys SLICE, SLICE + SLICES, ... */
struct mq_select {
	const float *keys;
	const struct mq_tseg *segs;
	const struct mq_tile *tiles;
	struct mq_cand *part;  /* MQ_SLICES lists of MATCH_K_MAX per query */
	uint32_t pos0, len, slices;
	unsigned k;

	MQ_HD void operator()(size_t i) const
	{
		unsigned j = (unsigned)(i / slices);
		uint32_t s = (uint32_t)(i % slices);
		const float *row = keys + (size_t)j * MQ_ECHUNK;
		struct mq_cand l[MATCH_K_MAX], *o = part + ((size_t)j * MQ_SLICES + s) * MATCH_K_MAX;

		mq_clear(l, k);
		for (uint32_t p = s; p < len; p += slices) {
			float key = row[p];

			if (key < INFINITY && key <= l[k - 1].key) {
				struct mq_at a = mq_where(tiles, pos0 + p);

				mq_insert(l, k, { key, pos0 + p, segs[a.seg].seq[a.idx] });
			}
		}
		for (unsigned t = 0; t < k; t++)
			o[t] = l[t];
	}
};

/* Per query of the chunk: the slices' lists into its best k. Each list is sorted: stop early. */
struct mq_merge {
	const struct mq_cand *part;
	struct mq_cand *best;  /* the query chunk's first row */
	uint32_t slices;
	unsigned k;

	MQ_HD void operator()(size_t j) const
	{
		struct mq_cand *l = best + j * MATCH_K_MAX;

		for (uint32_t s = 0; s < slices; s++) {
			const struct mq_cand *c = part + ((size_t)j * MQ_SLICES + s) * MATCH_K_MAX;

			for (unsigned t = 0; t < k && c[t].pos != MQ_NONE && mq_before(c[t], l[k - 1]); t++)
				mq_insert(l, k, c[t]);
		}
	}
};

/* Per (query, rank): match_query.c's value_of(), op for op, and where the entry is; GOT[j]. */
struct mq_value {
	const struct mq_cand *best;
	const struct mq_tseg *segs;
	const struct mq_tile *tiles;
	const float *qn;
	struct match_device_hit *out;
	unsigned *got;
	unsigned d, k;
	int l2;

	MQ_HD void operator()(size_t i) const
	{
		unsigned j = (unsigned)(i / k), t = (unsigned)(i % k), n = 0;
		const struct mq_cand *l = best + (size_t)j * MATCH_K_MAX;
		const float *qj = qn + (size_t)j * d;
		double s = 0.0;

		if (t == 0 && got[j] != MQ_BAD) {
			while (n < k && l[n].pos != MQ_NONE)
				n++;
			got[j] = n;
		}
		if (l[t].pos == MQ_NONE)
			return;
		struct mq_at a = mq_where(tiles, l[t].pos);
		const float *x = mq_x(segs[a.seg], a.idx, d);

		for (unsigned kk = 0; kk < d; kk++) {
			double xv = x[(size_t)kk * MQ_LANES];

			if (l2) {
				double df = mq_dsub(qj[kk], xv);

				s = mq_dadd(s, mq_dmul(df, df));
			} else {
				s = mq_dadd(s, mq_dmul(qj[kk], xv));
			}
		}
		out[(size_t)j * MATCH_K_MAX + t] = { a.seg, a.idx, l2 ? (float)mq_dsqrt(s) : (float)s };
	}
};

#endif /* GPU_CUDA_MATCH_KERN_CUH */
