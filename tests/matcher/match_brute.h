/*
 * The tests' brute force: the matcher's key (match.h: ||x||^2 - 2 q.x or -q.x as one fma chain in
 * dimension order, the norm rounded from double) over a plain array of entries, top k by
 * (key, enrolment order). Independent of the matcher's layout, shards, segments and kernels.
 */
#ifndef MATCH_BRUTE_H
#define MATCH_BRUTE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

struct brute_entry {
	const float *v;   /* stored form: raw (L2) or unit length (cosine), as the matcher stores it */
	uint64_t seq;
	int live;
};

/* Unit-length copy as the matcher computes it (in double, rounded once). */
static inline void brute_normalize(const float *v, unsigned d, float *out)
{
	double s = 0;

	for (unsigned k = 0; k < d; k++)
		s += (double)v[k] * v[k];
	double inv = 1.0 / sqrt(s);

	for (unsigned k = 0; k < d; k++)
		out[k] = (float)(v[k] * inv);
}

static inline float brute_key(const float *q, const float *x, unsigned d, enum match_metric m)
{
	float acc = 0.0f;
	double ss = 0;

	for (unsigned k = 0; k < d; k++) {
		acc = fmaf(q[k], x[k], acc);
		ss += (double)x[k] * x[k];
	}
	return m == MATCH_METRIC_L2 ? fmaf(-2.0f, acc, (float)ss) : fmaf(-1.0f, acc, 0.0f);
}

/* Indices of the best K live entries into OUT; returns how many. Q already unit under cosine. */
static inline unsigned brute_topk(const struct brute_entry *e, unsigned n, const float *q, unsigned d,
				  enum match_metric m, unsigned k, unsigned *out)
{
	float keys[MATCH_K_MAX];
	unsigned got = 0;

	for (unsigned i = 0; i < n; i++) {
		if (!e[i].live)
			continue;
		float key = brute_key(q, e[i].v, d, m);
		unsigned p = got;

		while (p > 0 && (keys[p - 1] > key || (keys[p - 1] == key && e[out[p - 1]].seq > e[i].seq)))
			p--;
		if (p >= k)
			continue;
		if (got < k)
			got++;
		for (unsigned j = got - 1; j > p; j--) {
			keys[j] = keys[j - 1];
			out[j] = out[j - 1];
		}
		keys[p] = key;
		out[p] = i;
	}
	return got;
}

/* A deterministic generator, so that a failure reproduces. */
static inline uint64_t brute_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static inline float brute_randf(uint64_t *s)
{
	return (float)((brute_rand(s) >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

#endif /* MATCH_BRUTE_H */
