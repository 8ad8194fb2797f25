/*
 * Accuracy on labelled descriptors (match_eval.h): the pairs and their scores, the DET curve, EER,
 * FNMR at FMR with Wilson and people-level bootstrap intervals, open-set identification and
 * template fusion. Pure computation, called by `vigilctl eval` from its main thread; nothing here
 * keeps state between calls. Every buffer that held scores or descriptors is biometric-derived
 * only through distances; the fused template is the caller's.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_eval.h"

#define RULE_OF_THREE 3.0
#define WILSON_Z 1.959963984540054 /* the 97.5th percentile of the standard normal */

static const double fmr_targets[MATCH_EVAL_N_FMR] = { 1e-2, 1e-3, 1e-4 };
static const double fpir_targets[MATCH_EVAL_N_FPIR] = { 1e-1, 1e-2 };
static const double fuse_targets[MATCH_EVAL_N_FUSE] = { 1e-2, 1e-3 };

/* A scored pair: genuine when a == b (weight m[a] in a bootstrap round), else impostor (m[a] m[b]). */
struct pair {
	double s;
	unsigned a, b;
};

/* Scored pairs, ascending; M the people's bootstrap multiplicities, NULL: every weight 1. */
struct plist {
	struct pair *p;
	size_t n;
};

double match_eval_score(const float *a, const float *b, unsigned d, enum match_eval_metric metric)
{
	double acc = 0, na = 0, nb = 0;

	if (metric == MATCH_EVAL_L2) {
		for (unsigned k = 0; k < d; k++) {
			double t = (double)a[k] - (double)b[k];

			acc += t * t;
		}
		return sqrt(acc);
	}
	for (unsigned k = 0; k < d; k++) {
		acc += (double)a[k] * (double)b[k];
		na += (double)a[k] * (double)a[k];
		nb += (double)b[k] * (double)b[k];
	}
	return 1.0 - acc / sqrt(na * nb);
}

int match_eval_fuse(const float *const *descs, size_t k, unsigned d, int metric, float *out)
{
	double norm = 0;

	if (k == 0 || d == 0)
		return -EINVAL;
	for (unsigned j = 0; j < d; j++) {
		double sum = 0;

		for (size_t i = 0; i < k; i++)
			sum += descs[i][j];
		out[j] = (float)(sum / (double)k);
		norm += (double)out[j] * out[j];
	}
	if (metric != MATCH_EVAL_COSINE)
		return 0;
	if (norm == 0)
		return -EINVAL;
	norm = sqrt(norm);
	for (unsigned j = 0; j < d; j++)
		out[j] = (float)(out[j] / norm);
	return 0;
}

struct match_eval_ci match_eval_wilson_rate(double p, double n)
{
	double z2n, centre, half;

	if (!(n > 0))
		return (struct match_eval_ci){ NAN, NAN };
	z2n = WILSON_Z * WILSON_Z / n;
	centre = (p + z2n / 2) / (1 + z2n);
	half = WILSON_Z * sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n);
	/* the ends exactly where the rate is 0 or 1, not a rounding away from them */
	return (struct match_eval_ci){ p <= 0 ? 0 : fmax(0, centre - half), p >= 1 ? 1 : fmin(1, centre + half) };
}

struct match_eval_ci match_eval_wilson(size_t x, size_t n)
{
	return match_eval_wilson_rate(n ? (double)x / (double)n : 0, (double)n);
}

static int cmp_pair(const void *x, const void *y)
{
	double a = ((const struct pair *)x)->s, b = ((const struct pair *)y)->s;

	return (a > b) - (a < b);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static double weight(const struct pair *p, const unsigned *m)
{
	if (!m)
		return 1;
	return p->a == p->b ? m[p->a] : (double)m[p->a] * m[p->b];
}

static double total(const struct plist *l, const unsigned *m)
{
	double w = 0;

	for (size_t i = 0; i < l->n; i++)
		w += weight(&l->p[i], m);
	return w;
}

/*
 * The largest threshold whose false rate on the ascending negatives NEG is at most TARGET: the
 * midpoint between the last score it accepts and the first it refuses (just under the first
 * score when it accepts none, +inf when it accepts all). *RATE: the false rate there.
 */
static double threshold_in(const struct plist *neg, const unsigned *m, double target, double *rate)
{
	double w = total(neg, m), cum = 0, last = NAN;
	size_t i = 0;

	*rate = NAN;
	if (w == 0)
		return NAN;
	while (i < neg->n) {
		double s = neg->p[i].s, group = 0;
		size_t j = i;

		for (; j < neg->n && neg->p[j].s == s; j++)
			group += weight(&neg->p[j], m);
		if (cum + group > target * w) {
			*rate = cum / w;
			return isnan(last) ? nextafter(s, -INFINITY) : last + (s - last) / 2;
		}
		cum += group;
		last = s;
		i = j;
	}
	*rate = cum / w;
	return INFINITY;
}

double match_eval_threshold_at(const double *neg, size_t n, double target, bool *supported)
{
	double t, rate;
	struct plist l;

	*supported = target * (double)n >= RULE_OF_THREE;
	if (n == 0)
		return NAN;
	l.p = malloc(n * sizeof(*l.p));
	if (!l.p)
		return NAN;
	for (size_t i = 0; i < n; i++)
		l.p[i] = (struct pair){ neg[i], 0, 1 };
	l.n = n;
	t = threshold_in(&l, NULL, target, &rate);
	free(l.p);
	return t;
}

/* The weight of positives (genuine pairs) scoring above T, and their total weight in *W. */
static double misses_above(const struct plist *pos, const unsigned *m, double t, double *w)
{
	double miss = 0;

	*w = 0;
	for (size_t i = 0; i < pos->n; i++) {
		double x = weight(&pos->p[i], m);

		*w += x;
		if (pos->p[i].s > t)
			miss += x;
	}
	return miss;
}

/*
 * EER of the ascending genuine and impostor lists under weights M: over every distinct score T
 * (and -inf), the first T where |FMR - FNMR| is least. With DET (room for n_gen + n_imp + 1
 * points) also writes the curve. Returns the EER (NAN without pairs of either kind).
 */
static double eer_walk(const struct plist *gen, const struct plist *imp, const unsigned *m, double *thr,
		       struct match_eval_det *det, size_t *n_det)
{
	double wg = total(gen, m), wi = total(imp, m), acc_g = 0, acc_i = 0, best = 1, eer = 0.5;
	size_t i = 0, j = 0, n = 0;

	*thr = -INFINITY;
	if (wg == 0 || wi == 0)
		return NAN;
	if (det)
		det[n++] = (struct match_eval_det){ -INFINITY, 0, 1 };
	while (i < gen->n || j < imp->n) {
		double t = i == gen->n ? imp->p[j].s : j == imp->n ? gen->p[i].s : fmin(gen->p[i].s, imp->p[j].s);
		double fmr, fnmr;

		for (; i < gen->n && gen->p[i].s == t; i++)
			acc_g += weight(&gen->p[i], m);
		for (; j < imp->n && imp->p[j].s == t; j++)
			acc_i += weight(&imp->p[j], m);
		fmr = acc_i / wi;
		fnmr = (wg - acc_g) / wg;
		if (det)
			det[n++] = (struct match_eval_det){ t, fmr, fnmr };
		if (fabs(fmr - fnmr) < best) {
			best = fabs(fmr - fnmr);
			eer = (fmr + fnmr) / 2;
			*thr = t;
		}
	}
	if (n_det)
		*n_det = n;
	return eer;
}

/* Point's statement and flag for TARGET over NEGATIVES trials (WHAT: "FMR", "FPIR"; OF: their name). */
static void point_init(struct match_eval_point *pt, double target, size_t negatives, size_t positives,
		       const char *what, const char *of)
{
	*pt = (struct match_eval_point){ .target = target, .negatives = negatives, .positives = positives,
					 .threshold = NAN, .false_rate = NAN, .miss_rate = NAN,
					 .miss_wilson = { NAN, NAN }, .miss_boot = { NAN, NAN } };
	pt->supported = target * (double)negatives >= RULE_OF_THREE && positives > 0;
	if (positives == 0)
		snprintf(pt->statement, sizeof(pt->statement), "%s %g: no positive trials to measure a miss rate on",
			 what, target);
	else if (!pt->supported)
		snprintf(pt->statement, sizeof(pt->statement),
			 "%s %g cannot be measured on %zu %s: it needs at least %.0f (3/%s); not extrapolated", what,
			 target, negatives, of, ceil(RULE_OF_THREE / target), what);
	else
		snprintf(pt->statement, sizeof(pt->statement), "%s %g is observable on %zu %s (at least %.0f needed)",
			 what, target, negatives, of, ceil(RULE_OF_THREE / target));
}

/* Threshold at PT's target over NEG, then the miss rate of POS there, with its Wilson interval. */
static void point_measure(struct match_eval_point *pt, const struct plist *neg, const struct plist *pos)
{
	double w, miss;

	if (!pt->supported)
		return;
	pt->threshold = threshold_in(neg, NULL, pt->target, &pt->false_rate);
	miss = misses_above(pos, NULL, pt->threshold, &w);
	pt->miss_rate = miss / w;
	pt->miss_wilson = match_eval_wilson((size_t)miss, pos->n);
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The 2.5th and 97.5th percentiles of V (N values, NANs left out), linearly interpolated. */
static struct match_eval_ci percentiles(double *v, size_t n)
{
	size_t k = 0;
	double q[2] = { 0.025, 0.975 }, r[2];

	for (size_t i = 0; i < n; i++)
		if (!isnan(v[i]))
			v[k++] = v[i];
	if (k == 0)
		return (struct match_eval_ci){ NAN, NAN };
	qsort(v, k, sizeof(*v), cmp_double);
	for (int i = 0; i < 2; i++) {
		double pos = q[i] * (double)(k - 1), f = floor(pos);
		size_t lo = (size_t)f, hi = lo + 1 < k ? lo + 1 : lo;

		r[i] = v[lo] + (pos - f) * (v[hi] - v[lo]);
	}
	return (struct match_eval_ci){ r[0], r[1] };
}

/* People-level bootstrap of the EER and of each supported FNMR at FMR: R's intervals. */
static int bootstrap(struct match_eval_report *r, const struct plist *gen, const struct plist *imp)
{
	size_t rounds = r->bootstrap_rounds;
	unsigned *m = calloc(r->n_people, sizeof(*m));
	double *v = calloc(rounds * (1 + MATCH_EVAL_N_FMR), sizeof(*v));
	uint64_t state = r->seed;

	if (!m || !v) {
		free(m);
		free(v);
		return -ENOMEM;
	}
	for (size_t k = 0; k < rounds; k++) {
		double thr, w, miss, rate;

		memset(m, 0, r->n_people * sizeof(*m));
		for (unsigned p = 0; p < r->n_people; p++)
			m[splitmix64(&state) % r->n_people]++;
		v[k] = eer_walk(gen, imp, m, &thr, NULL, NULL);
		for (int t = 0; t < MATCH_EVAL_N_FMR; t++) {
			double *slot = &v[(1 + (size_t)t) * rounds + k];

			*slot = NAN;
			if (!r->at_fmr[t].supported)
				continue;
			thr = threshold_in(imp, m, r->at_fmr[t].target, &rate);
			miss = misses_above(gen, m, thr, &w);
			if (w > 0)
				*slot = miss / w;
		}
	}
	r->eer_boot = percentiles(v, rounds);
	for (int t = 0; t < MATCH_EVAL_N_FMR; t++)
		if (r->at_fmr[t].supported)
			r->at_fmr[t].miss_boot = percentiles(&v[(1 + (size_t)t) * rounds], rounds);
	free(m);
	free(v);
	return 0;
}

static int check_conf(const struct match_eval_conf *c, unsigned *counts)
{
	const struct match_eval_set *s = &c->set;
	bool any_enrolled = false;

	if (!s->desc || !s->person || s->d == 0 || s->n_people < 2 ||
	    (s->metric != MATCH_EVAL_L2 && s->metric != MATCH_EVAL_COSINE) || (c->n_nonmated && !c->nonmated))
		return -EINVAL;
	for (size_t i = 0; i < s->n; i++) {
		double norm = 0;

		if (s->person[i] >= s->n_people)
			return -EINVAL;
		counts[s->person[i]]++;
		for (unsigned k = 0; k < s->d; k++) {
			if (!isfinite(s->desc[i * s->d + k]))
				return -EINVAL;
			norm += fabs(s->desc[i * s->d + k]);
		}
		if (s->metric == MATCH_EVAL_COSINE && norm == 0)
			return -EINVAL;
	}
	for (size_t i = 0; i < c->n_nonmated * s->d; i++)
		if (!isfinite(c->nonmated[i]))
			return -EINVAL;
	for (unsigned p = 0; p < s->n_people; p++) {
		if (counts[p] == 0)
			return -EINVAL;
		any_enrolled |= !c->enrolled || c->enrolled[p];
	}
	return any_enrolled ? 0 : -EINVAL;
}

/* Every pair of the set, scored, split into genuine and impostor lists, each ascending. */
static int score_pairs(const struct match_eval_set *s, const unsigned *counts, struct plist *gen, struct plist *imp)
{
	size_t ng = 0;

	for (unsigned p = 0; p < s->n_people; p++)
		ng += (size_t)counts[p] * (counts[p] - 1) / 2;
	gen->p = malloc((ng ? ng : 1) * sizeof(*gen->p));
	imp->p = malloc((s->n * (s->n - 1) / 2 - ng + 1) * sizeof(*imp->p));
	if (!gen->p || !imp->p)
		return -ENOMEM;
	gen->n = imp->n = 0;
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = i + 1; j < s->n; j++) {
			struct pair pr = { match_eval_score(&s->desc[i * s->d], &s->desc[j * s->d], s->d, s->metric),
					   s->person[i], s->person[j] };

			if (pr.a == pr.b)
				gen->p[gen->n++] = pr;
			else
				imp->p[imp->n++] = pr;
		}
	qsort(gen->p, gen->n, sizeof(*gen->p), cmp_pair);
	qsort(imp->p, imp->n, sizeof(*imp->p), cmp_pair);
	return 0;
}

static double *scores_of(const struct plist *l)
{
	double *v = malloc((l->n ? l->n : 1) * sizeof(*v));

	if (v)
		for (size_t i = 0; i < l->n; i++)
			v[i] = l->p[i].s;
	return v;
}

static int verification(struct match_eval_report *r, const struct match_eval_conf *c, const struct plist *gen,
			const struct plist *imp)
{
	double w, miss;

	r->det = malloc((gen->n + imp->n + 1) * sizeof(*r->det));
	r->genuine = scores_of(gen);
	r->impostor = scores_of(imp);
	if (!r->det || !r->genuine || !r->impostor)
		return -ENOMEM;
	r->n_genuine = gen->n;
	r->n_impostor = imp->n;
	r->eer = eer_walk(gen, imp, NULL, &r->eer_threshold, r->det, &r->n_det);
	miss = misses_above(gen, NULL, r->eer_threshold, &w);
	r->eer_wilson = gen->n ? match_eval_wilson((size_t)miss, gen->n) : (struct match_eval_ci){ NAN, NAN };
	r->threshold = c->threshold;
	miss = misses_above(gen, NULL, c->threshold, &w);
	r->fnmr = gen->n ? miss / w : NAN;
	r->fnmr_wilson = match_eval_wilson((size_t)miss, gen->n);
	{
		size_t fm = 0;

		while (fm < imp->n && imp->p[fm].s <= c->threshold)
			fm++;
		r->fmr = imp->n ? (double)fm / (double)imp->n : NAN;
		r->fmr_wilson = match_eval_wilson(fm, imp->n);
	}
	for (int t = 0; t < MATCH_EVAL_N_FMR; t++) {
		point_init(&r->at_fmr[t], fmr_targets[t], imp->n, gen->n, "FMR", "impostor pairs");
		point_measure(&r->at_fmr[t], imp, gen);
	}
	r->eer_boot = (struct match_eval_ci){ NAN, NAN };
	return r->bootstrap_rounds ? bootstrap(r, gen, imp) : 0;
}

/* The top candidate of PROBE in the gallery (GALLERY[g] an image index of person PEOPLE[g]). */
static double top_of(const struct match_eval_set *s, const float *probe, const size_t *gallery, size_t n_gallery,
		     unsigned *who)
{
	double best = INFINITY;

	*who = 0;
	for (size_t g = 0; g < n_gallery; g++) {
		double v = match_eval_score(probe, &s->desc[gallery[g] * s->d], s->d, s->metric);

		if (v < best) {
			best = v;
			*who = s->person[gallery[g]];
		}
	}
	return best;
}

static int identification(struct match_eval_report *r, const struct match_eval_conf *c, const size_t *first)
{
	const struct match_eval_set *s = &c->set;
	struct match_eval_ident *id = &r->ident;
	size_t *gallery = malloc(s->n_people * sizeof(*gallery)), n_gallery = 0, hits = 0, fn = 0, fp = 0;
	struct plist mated = { malloc((s->n + 1) * sizeof(struct pair)), 0 }; /* a == b: right top candidate */
	struct plist nonm = { malloc((s->n + c->n_nonmated + 1) * sizeof(struct pair)), 0 };
	int rc = -ENOMEM;

	if (!gallery || !mated.p || !nonm.p)
		goto out_free;
	for (unsigned p = 0; p < s->n_people; p++)
		if (!c->enrolled || c->enrolled[p])
			gallery[n_gallery++] = first[p];
	for (size_t i = 0; i < s->n + c->n_nonmated; i++) {
		const float *probe = i < s->n ? &s->desc[i * s->d] : &c->nonmated[(i - s->n) * s->d];
		unsigned who, p = i < s->n ? s->person[i] : 0;
		double top;

		if (i < s->n && first[p] == i && (!c->enrolled || c->enrolled[p]))
			continue; /* in the gallery */
		top = top_of(s, probe, gallery, n_gallery, &who);
		if (i < s->n && (!c->enrolled || c->enrolled[p]))
			mated.p[mated.n++] = (struct pair){ top, who, p };
		else
			nonm.p[nonm.n++] = (struct pair){ top, 0, 1 };
	}
	qsort(nonm.p, nonm.n, sizeof(*nonm.p), cmp_pair);
	for (size_t i = 0; i < mated.n; i++) {
		hits += mated.p[i].a == mated.p[i].b;
		fn += mated.p[i].a != mated.p[i].b || mated.p[i].s > c->threshold;
	}
	for (size_t i = 0; i < nonm.n; i++)
		fp += nonm.p[i].s <= c->threshold;
	id->n_enrolled = n_gallery;
	id->n_mated = mated.n;
	id->n_nonmated = nonm.n;
	id->rank1 = mated.n ? (double)hits / (double)mated.n : NAN;
	id->rank1_wilson = match_eval_wilson(hits, mated.n);
	id->fnir = mated.n ? (double)fn / (double)mated.n : NAN;
	id->fnir_wilson = match_eval_wilson(fn, mated.n);
	id->fpir = nonm.n ? (double)fp / (double)nonm.n : NAN;
	id->fpir_wilson = match_eval_wilson(fp, nonm.n);
	for (int t = 0; t < MATCH_EVAL_N_FPIR; t++) {
		struct match_eval_point *pt = &id->at_fpir[t];

		point_init(pt, fpir_targets[t], nonm.n, mated.n, "FPIR", "non-mated searches");
		if (!pt->supported)
			continue;
		pt->threshold = threshold_in(&nonm, NULL, pt->target, &pt->false_rate);
		fn = 0;
		for (size_t i = 0; i < mated.n; i++)
			fn += mated.p[i].a != mated.p[i].b || mated.p[i].s > pt->threshold;
		pt->miss_rate = (double)fn / (double)mated.n;
		pt->miss_wilson = match_eval_wilson(fn, mated.n);
	}
	id->nonmated_top = scores_of(&nonm);
	rc = id->nonmated_top ? 0 : -ENOMEM;
out_free:
	free(gallery);
	free(mated.p);
	free(nonm.p);
	return rc;
}

/*
 * Fusion: each person with at least 1 + k images enrols the first; their next images form
 * floor((count - 1) / k) groups of k. Single probes are those images one by one, fused probes
 * the groups; each is scored against every enrolment. BYPERSON lists the images person by person.
 */
static int fusion(struct match_eval_report *r, const struct match_eval_conf *c, const size_t *byperson,
		  const size_t *start, const unsigned *counts)
{
	const struct match_eval_set *s = &c->set;
	struct match_eval_fusion *fu = &r->fusion;
	unsigned k = c->fuse_k, *elig = malloc(s->n_people * sizeof(*elig));
	size_t n_elig = 0, n_single = 0;
	struct plist sg = { 0 }, si = { 0 }, fg = { 0 }, fi = { 0 };
	const float **group = malloc(k * sizeof(*group));
	float *fused = malloc(s->d * sizeof(*fused));
	int rc = -ENOMEM;

	if (!elig || !group || !fused)
		goto out_free;
	for (unsigned p = 0; p < s->n_people; p++)
		if (counts[p] >= 1 + k) {
			elig[n_elig++] = p;
			n_single += (counts[p] - 1) / k * k;
		}
	fu->k = k;
	fu->n_people = n_elig;
	sg.p = malloc((n_single + 1) * sizeof(struct pair));
	si.p = malloc((n_single * n_elig + 1) * sizeof(struct pair));
	fg.p = malloc((n_single / k + 1) * sizeof(struct pair));
	fi.p = malloc((n_single / k * n_elig + 1) * sizeof(struct pair));
	if (!sg.p || !si.p || !fg.p || !fi.p)
		goto out_free;
	for (size_t e = 0; e < n_elig; e++) {
		unsigned p = elig[e];

		for (size_t g = 0; g < (counts[p] - 1) / k; g++) {
			for (unsigned j = 0; j < k; j++) {
				const float *img = &s->desc[byperson[start[p] + 1 + g * k + j] * s->d];

				group[j] = img;
				for (size_t q = 0; q < n_elig; q++) {
					const float *enr = &s->desc[byperson[start[elig[q]]] * s->d];
					struct pair pr = { match_eval_score(img, enr, s->d, s->metric), p, elig[q] };

					if (elig[q] == p)
						sg.p[sg.n++] = pr;
					else
						si.p[si.n++] = pr;
				}
			}
			if (match_eval_fuse(group, k, s->d, s->metric, fused) < 0) {
				rc = -EINVAL;
				goto out_free;
			}
			for (size_t q = 0; q < n_elig; q++) {
				const float *enr = &s->desc[byperson[start[elig[q]]] * s->d];
				struct pair pr = { match_eval_score(fused, enr, s->d, s->metric), p, elig[q] };

				if (elig[q] == p)
					fg.p[fg.n++] = pr;
				else
					fi.p[fi.n++] = pr;
			}
		}
	}
	qsort(si.p, si.n, sizeof(*si.p), cmp_pair);
	qsort(fi.p, fi.n, sizeof(*fi.p), cmp_pair);
	fu->n_single = sg.n;
	fu->n_fused = fg.n;
	for (int t = 0; t < MATCH_EVAL_N_FUSE; t++) {
		point_init(&fu->single[t], fuse_targets[t], si.n, sg.n, "FMR", "impostor pairs");
		point_measure(&fu->single[t], &si, &sg);
		point_init(&fu->fused[t], fuse_targets[t], fi.n, fg.n, "FMR", "impostor pairs");
		point_measure(&fu->fused[t], &fi, &fg);
	}
	rc = 0;
out_free:
	free(sg.p);
	free(si.p);
	free(fg.p);
	free(fi.p);
	free(elig);
	free(group);
	if (fused)
		memset(fused, 0, s->d * sizeof(*fused));
	free(fused);
	return rc;
}

int match_eval_run(const struct match_eval_conf *conf, struct match_eval_report *out)
{
	const struct match_eval_set *s;
	struct match_eval_report r = { 0 };
	struct plist gen = { 0 }, imp = { 0 };
	unsigned *counts = NULL;
	size_t *first = NULL, *start = NULL, *byperson = NULL;
	int rc;

	if (!conf || conf->set.n_people < 2)
		return -EINVAL;
	s = &conf->set;
	counts = calloc(s->n_people, sizeof(*counts));
	first = malloc(s->n_people * sizeof(*first));
	start = calloc(s->n_people + 1, sizeof(*start));
	byperson = malloc((s->n + 1) * sizeof(*byperson));
	rc = -ENOMEM;
	if (!counts || !first || !start || !byperson)
		goto out_free;
	rc = check_conf(conf, counts);
	if (rc < 0)
		goto out_free;
	/* The images person by person, each person's in the set's order; FIRST: each one's first. */
	for (unsigned p = 0; p < s->n_people; p++)
		start[p + 1] = start[p] + counts[p];
	{
		size_t *fill = calloc(s->n_people, sizeof(*fill));

		if (!fill)
			goto out_free;
		for (size_t i = 0; i < s->n; i++)
			byperson[start[s->person[i]] + fill[s->person[i]]++] = i;
		free(fill);
	}
	for (unsigned p = 0; p < s->n_people; p++)
		first[p] = byperson[start[p]];
	r.n_images = s->n;
	r.n_people = s->n_people;
	r.d = s->d;
	r.metric = s->metric;
	r.bootstrap_rounds = conf->bootstrap_rounds;
	r.seed = conf->seed;
	rc = score_pairs(s, counts, &gen, &imp);
	if (rc == 0)
		rc = verification(&r, conf, &gen, &imp);
	if (rc == 0)
		rc = identification(&r, conf, first);
	if (rc == 0 && conf->fuse_k)
		rc = fusion(&r, conf, byperson, start, counts);
	if (rc < 0)
		match_eval_report_free(&r);
	else
		*out = r;
out_free:
	free(gen.p);
	free(imp.p);
	free(counts);
	free(first);
	free(start);
	free(byperson);
	return rc;
}

void match_eval_report_free(struct match_eval_report *r)
{
	free(r->genuine);
	free(r->impostor);
	free(r->det);
	free(r->ident.nonmated_top);
	*r = (struct match_eval_report){ 0 };
}

/*
 * Every impostor pair of CONF's set and its non-mated faces (each non-mated face a person of its
 * own), ascending, into *IMP (malloc'd), the people counted into *NP. 0, -EINVAL (as
 * match_eval_run, or no bootstrap rounds), -ENOMEM.
 */
static int impostor_pairs(const struct match_eval_conf *conf, struct plist *imp, unsigned *np)
{
	const struct match_eval_set *s = &conf->set;
	size_t m = conf->n_nonmated, total = s->n + m;
	unsigned *counts = calloc(s->n_people + 1, sizeof(*counts));
	int rc = -ENOMEM;

	imp->n = 0;
	imp->p = malloc((total * (total - 1) / 2 + 1) * sizeof(struct pair));
	if (!counts || !imp->p)
		goto out;
	rc = conf->bootstrap_rounds && s->n_people >= 2 ? check_conf(conf, counts) : -EINVAL;
	if (rc < 0)
		goto out;
	/* Image i is person s->person[i]; non-mated face j is person n_people + j. */
	for (size_t i = 0; i < total; i++) {
		const float *a = i < s->n ? &s->desc[i * s->d] : &conf->nonmated[(i - s->n) * s->d];
		unsigned pa = i < s->n ? s->person[i] : s->n_people + (unsigned)(i - s->n);

		for (size_t j = i + 1; j < total; j++) {
			const float *b = j < s->n ? &s->desc[j * s->d] : &conf->nonmated[(j - s->n) * s->d];
			unsigned pb = j < s->n ? s->person[j] : s->n_people + (unsigned)(j - s->n);

			if (pa != pb)
				imp->p[imp->n++] = (struct pair){ match_eval_score(a, b, s->d, s->metric), pa, pb };
		}
	}
	qsort(imp->p, imp->n, sizeof(*imp->p), cmp_pair);
	*np = s->n_people + (unsigned)m;
out:
	free(counts);
	if (rc < 0) {
		free(imp->p);
		imp->p = NULL;
	}
	return rc;
}

int match_eval_threshold_boot(const struct match_eval_conf *conf, double target_fmr, struct match_eval_ci *out)
{
	size_t rounds = conf->bootstrap_rounds;
	unsigned np = 0, *mult = NULL;
	struct plist imp = { 0 };
	double *v = malloc((rounds + 1) * sizeof(*v)), rate;
	uint64_t state = conf->seed;
	int rc = v ? impostor_pairs(conf, &imp, &np) : -ENOMEM;

	if (rc == 0 && !(mult = calloc(np, sizeof(*mult))))
		rc = -ENOMEM;
	for (size_t k = 0; rc == 0 && k < rounds; k++) {
		memset(mult, 0, np * sizeof(*mult));
		for (unsigned p = 0; p < np; p++)
			mult[splitmix64(&state) % np]++;
		v[k] = threshold_in(&imp, mult, target_fmr, &rate);
	}
	if (rc == 0)
		*out = percentiles(v, rounds);
	free(mult);
	free(imp.p);
	free(v);
	return rc;
}

int match_eval_fmr_design_effect(const struct match_eval_conf *conf, double threshold, double *deff)
{
	size_t rounds = conf->bootstrap_rounds, below = 0;
	unsigned np = 0, *mult = NULL;
	struct plist imp = { 0 };
	uint64_t state = conf->seed;
	double sum = 0, sum2 = 0;
	int rc = impostor_pairs(conf, &imp, &np);

	if (rc == 0 && !(mult = calloc(np, sizeof(*mult))))
		rc = -ENOMEM;
	while (rc == 0 && below < imp.n && imp.p[below].s < threshold)
		below++;
	for (size_t k = 0; rc == 0 && k < rounds; k++) {
		double w, in = 0;

		memset(mult, 0, np * sizeof(*mult));
		for (unsigned p = 0; p < np; p++)
			mult[splitmix64(&state) % np]++;
		w = total(&imp, mult);
		for (size_t i = 0; i < below; i++)
			in += weight(&imp.p[i], mult);
		double fmr = w > 0 ? in / w : 0;
		sum += fmr;
		sum2 += fmr * fmr;
	}
	if (rc == 0) {
		/* the bootstrap's variance over the binomial one at the same rate, never below 1 */
		double p = (double)below / (double)imp.n, var_binom = p * (1 - p) / (double)imp.n;
		double mean = sum / (double)rounds, var_boot = sum2 / (double)rounds - mean * mean;

		*deff = below == 0 || var_binom <= 0 ? 1 : fmax(1, var_boot / var_binom);
	}
	free(mult);
	free(imp.p);
	return rc;
}
