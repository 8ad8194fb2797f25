/**
 * @file match_eval.h
 * How often the face model is wrong, measured on labelled descriptors: pure computation, no I/O,
 * no threads of its own. Called by `vigilctl eval` (mgmt/vigilctl/vigilctl_eval.c) from its main
 * thread, and match_eval_fuse() also by the pipeline for a track's template (any thread: it
 * touches only its arguments).
 *
 * Scores are distances, smaller is closer: the L2 distance, or for cosine 1 - similarity (the
 * convention of match_calib.h). Two descriptors match at threshold T when score <= T (the
 * matcher's rule, match_query.c). Every score is computed in double, in dimension order, from the
 * float descriptors, so an independent program can reproduce it bit for bit.
 *
 * What it measures (ISO/IEC 19795-1 terms):
 * - verification: every pair of a person's images is genuine, every pair of two people's images
 *   is an impostor pair. FMR(T) = impostor pairs with score <= T / impostor pairs;
 *   FNMR(T) = genuine pairs with score > T / genuine pairs. The DET curve has one point per
 *   distinct score. EER: the point where |FMR - FNMR| is least (the first such threshold), the
 *   mean of the two. FNMR at a target FMR uses the largest threshold whose observed FMR is at most
 *   the target: the midpoint between the last impostor score it accepts and the first it refuses.
 * - open-set identification, as NIST FRTE 1:N: the gallery holds the first image of each
 *   enrolled person; a mated search is one of that person's other images, a non-mated search an
 *   image of a person not enrolled (a passer-by) or of the separate non-mated set. A search's
 *   answer is its top candidate (rank 1; it names one person, as an alert does).
 *   FPIR(T) = non-mated searches whose top score <= T; FNIR(T) = mated searches whose top
 *   candidate is someone else or scores > T; rank-1 = mated searches whose top candidate is right,
 *   whatever its score.
 * - template fusion: each person's first image is enrolled; the others are probes, alone or fused
 *   K at a time (match_eval_fuse); FNMR at FMR 1e-2 and 1e-3 against the enrolments, both ways.
 *
 * What the data can support: a rate below 3/N (N the negative trials: impostor pairs, non-mated
 * searches) cannot be observed (with no error in N trials the 95% upper bound is 3/N, the rule of
 * three). Such a point is flagged unsupported, its figures are NAN, and its statement says so; it
 * is never extrapolated.
 *
 * Intervals (95%): Wilson score intervals treat every trial as independent; they are too narrow,
 * because pairs share people. The people-level bootstrap resamples people with replacement
 * (a person drawn m times weighs m in each of their genuine pairs, m*m' in impostor pairs with a
 * person drawn m' times), with a fixed seed, and takes the 2.5th and 97.5th percentiles.
 *
 * Cost: O(n^2 d) for the pairs (n images; 400 images x 128: ~10 M operations), plus
 * O(rounds x pairs) for the bootstrap (500 x 78,000 for att), plus sorting the pairs.
 */
#ifndef MATCH_EVAL_H
#define MATCH_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum match_eval_metric {
	MATCH_EVAL_L2 = 0,     /* euclidean distance (gpu_model_info.metric 0) */
	MATCH_EVAL_COSINE = 1, /* 1 - cosine similarity (gpu_model_info.metric 1) */
};

#define MATCH_EVAL_N_FMR 3   /* FNMR at FMR 1e-2, 1e-3, 1e-4 */
#define MATCH_EVAL_N_FPIR 2  /* FNIR at FPIR 1e-1, 1e-2 */
#define MATCH_EVAL_N_FUSE 2  /* fusion: FNMR at FMR 1e-2, 1e-3 */
#define MATCH_EVAL_STATEMENT_MAX 200

/** Labelled descriptors. The caller owns every array; the library only reads them. */
struct match_eval_set {
	const float *desc;       /* n rows of d floats */
	const unsigned *person;  /* n labels, each < n_people; every person has at least one image */
	size_t n;
	unsigned n_people;       /* at least 2 */
	unsigned d;
	enum match_eval_metric metric;
};

struct match_eval_conf {
	struct match_eval_set set;
	const float *nonmated;        /* optional: n_nonmated rows of d, people not in the set */
	size_t n_nonmated;
	const unsigned char *enrolled; /* per person: 1 enrolled, 0 a passer-by; NULL: all enrolled */
	double threshold;             /* the operating point reported as it is (face-api L2: 0.6) */
	unsigned bootstrap_rounds;    /* people-level bootstrap rounds; 0: none */
	uint64_t seed;                /* the bootstrap's seed: same seed, same intervals */
	unsigned fuse_k;              /* images fused per probe in the fusion evaluation; 0: none */
};

/** A 95% interval; NAN, NAN where it cannot be computed. */
struct match_eval_ci {
	double lo, hi;
};

/** One operating point: the threshold for a target false rate and the miss rate there. */
struct match_eval_point {
	double target;           /* FMR or FPIR asked for */
	bool supported;          /* target x negatives >= 3 */
	double threshold;        /* NAN when unsupported */
	double false_rate;       /* FMR or FPIR observed at threshold (<= target) */
	double miss_rate;        /* FNMR or FNIR at threshold */
	struct match_eval_ci miss_wilson, miss_boot; /* boot: NAN where not bootstrapped */
	size_t negatives, positives; /* trials behind false_rate and miss_rate */
	char statement[MATCH_EVAL_STATEMENT_MAX]; /* one plain sentence */
};

/** One point of the DET curve: FMR and FNMR at THRESHOLD (score <= threshold matches). */
struct match_eval_det {
	double threshold, fmr, fnmr;
};

struct match_eval_ident {
	size_t n_enrolled, n_mated, n_nonmated; /* gallery entries, mated and non-mated searches */
	double rank1;                /* NAN without mated searches */
	struct match_eval_ci rank1_wilson;
	double fpir, fnir;           /* at conf.threshold; NAN without searches of that kind */
	struct match_eval_ci fpir_wilson, fnir_wilson;
	struct match_eval_point at_fpir[MATCH_EVAL_N_FPIR]; /* FNIR at FPIR 1e-1, 1e-2 */
	double *nonmated_top;        /* the non-mated searches' top scores, ascending */
};

struct match_eval_fusion {
	unsigned k;                  /* 0: not evaluated */
	size_t n_people;             /* people with at least 1 + k images */
	size_t n_single, n_fused;    /* probes of each kind (each against every enrolment) */
	struct match_eval_point single[MATCH_EVAL_N_FUSE], fused[MATCH_EVAL_N_FUSE];
};

/** Everything measured; the caller owns it and frees it with match_eval_report_free(). */
struct match_eval_report {
	size_t n_images;
	unsigned n_people, d;
	enum match_eval_metric metric;
	double *genuine, *impostor;      /* score lists, ascending */
	size_t n_genuine, n_impostor;
	struct match_eval_det *det;      /* thresholds ascending; the first point is threshold -inf */
	size_t n_det;
	double eer, eer_threshold;
	struct match_eval_ci eer_wilson; /* Wilson on the FNMR at the EER threshold (genuine pairs) */
	struct match_eval_ci eer_boot;
	double threshold, fmr, fnmr;     /* at conf.threshold */
	struct match_eval_ci fmr_wilson, fnmr_wilson;
	struct match_eval_point at_fmr[MATCH_EVAL_N_FMR]; /* FNMR at FMR 1e-2, 1e-3, 1e-4 */
	unsigned bootstrap_rounds;
	uint64_t seed;
	struct match_eval_ident ident;
	struct match_eval_fusion fusion;
};

/**
 * Measure CONF's set into *OUT (which the caller frees with match_eval_report_free()).
 * Returns 0; -EINVAL (fewer than 2 people, a label out of range, a person with no image, d 0,
 * no enrolled person, a non-finite descriptor, a zero vector under cosine); -ENOMEM.
 * On error *OUT is untouched.
 */
int match_eval_run(const struct match_eval_conf *conf, struct match_eval_report *out /* OUT */);

/** Free what the report holds; it becomes all zero. Safe on a zeroed report. */
void match_eval_report_free(struct match_eval_report *r);

/** The score of two descriptors of D floats: L2 distance, or 1 - cosine similarity. */
double match_eval_score(const float *a, const float *b, unsigned d, enum match_eval_metric metric);

/**
 * Fuse K descriptors (DESCS[0..K-1], D floats each) into one template in OUT (D floats, may not
 * alias an input): their mean, renormalised to unit length under cosine. Returns 0; -EINVAL
 * when K is 0 or, under cosine, the mean is the zero vector.
 */
int match_eval_fuse(const float *const *descs, size_t k, unsigned d, int metric, float *out /* OUT */);

/** The 95% Wilson score interval of X successes in N trials; NAN, NAN when N is 0. */
struct match_eval_ci match_eval_wilson(size_t x, size_t n);

/** The same for a rate P measured on N trials' worth (N need not be whole: effective pairs). */
struct match_eval_ci match_eval_wilson_rate(double p, double n);

/**
 * Threshold and false rate for TARGET on NEG negative scores (ascending, N of them): the largest
 * threshold whose false rate (scores <= threshold) is at most TARGET, as described above;
 * *SUPPORTED is TARGET x N >= 3. Returns the threshold (NAN when N is 0). Exposed for the
 * calibration checks of vigilctl eval.
 */
double match_eval_threshold_at(const double *neg, size_t n, double target, bool *supported /* OUT */);

/**
 * The people-level bootstrap interval (95%) of the threshold that meets TARGET_FMR over every
 * impostor pair of CONF's set and its non-mated faces (each non-mated face a person of its own),
 * with CONF's rounds and seed: the spread between populations of people that a calibration's
 * binomial interval leaves out. Returns 0; -EINVAL (as match_eval_run, or no rounds); -ENOMEM.
 */
int match_eval_threshold_boot(const struct match_eval_conf *conf, double target_fmr,
			      struct match_eval_ci *out /* OUT */);

/**
 * The design effect of the FMR at THRESHOLD (impostor scores below it) over CONF's impostor pairs,
 * as match_eval_threshold_boot takes them: the people bootstrap's variance of that FMR over the
 * binomial variance the same pairs would have if independent, at least 1. A calibration divides
 * its pairs by it (match_calib's effective_pairs), so that its intervals carry the spread
 * between populations of people. Returns 0; -EINVAL (as match_eval_threshold_boot); -ENOMEM.
 */
int match_eval_fmr_design_effect(const struct match_eval_conf *conf, double threshold, double *deff /* OUT */);

#endif /* MATCH_EVAL_H */
