/**
 * @file match_calib.h
 * A model's calibration: how close strangers' faces come under it, and what follows from that
 * for a deployment. It holds the low tail of the model's impostor scores (pairs of different
 * people) measured on labelled faces, and answers, each with a 95% interval:
 * - FMR(t): the fraction of impostor pairs within threshold t (ISO/IEC 19795-1 false match rate);
 * - FPIR(t, N): a passer-by's chance of raising a false alert against a watchlist of N people,
 *   1 - (1 - FMR(t))^N (NIST FRTE's threshold-based false positive identification rate, under the
 *   usual assumption that a stranger's scores against different enrolled people are independent);
 * - the threshold that keeps FPIR at a target for a watchlist of N people.
 *
 * Scores are dissimilarities throughout: the L2 distance, or 1 - cosine similarity, so that
 * "within t" is always "score < t" (the matcher's rule for L2).
 *
 * What the data cannot support is said, never extrapolated: an FMR below 1/impostor_pairs is only
 * an upper bound (rule of three: with no impostor within t, FMR < 3/pairs at 95%), and a threshold
 * beyond the stored tail gives only a lower bound. The pairs share people (each image is in many
 * pairs, and a few look-alike people carry much of the tail), so they are not independent trials:
 * the intervals are computed on EFFECTIVE_PAIRS, the pairs divided by the design effect that
 * `vigilctl eval --calibrate` measures with a people-level bootstrap (match_eval.h). The point
 * estimates use every pair.
 *
 * The file (calibration.json, beside the model it calibrates) is JSON:
 *   {"format":"vigil-calibration/1","model":{"id","digest","metric":"l2"|"cosine"},
 *    "source":"<what was measured: data, padding, backend>","impostor_pairs":P,"impostor_people":Q,
 *    "effective_pairs":E (optional; P when absent),"tail_limit":L,"tail":[ascending scores, every
 *    impostor score below L]}
 * It is bound to the model by the digest (gpu_model_identify()); its seal is the sha256 of its
 * bytes, which a deployment's authorisation names.
 *
 * Any thread; a loaded calibration is read-only and may be shared.
 */
#ifndef MATCH_CALIB_H
#define MATCH_CALIB_H

#include <stddef.h>
#include <stdint.h>

#define MATCH_CALIB_FILE "calibration.json"
#define MATCH_CALIB_TAIL_MAX 1000000u   /* scores in the tail, at most (a 1M-pair set's 100%) */
#define MATCH_CALIB_MAX_BYTES (32u << 20)

struct match_calib {
	char model_id[32];
	char model_digest[65];
	int metric;                 /* 0: L2, 1: cosine (scores are 1 - similarity) */
	char source[256];
	uint64_t impostor_pairs;    /* impostor comparisons measured */
	uint64_t impostor_people;   /* distinct people behind them */
	uint64_t effective_pairs;   /* as many independent pairs as they are worth (1..impostor_pairs):
				       the intervals' sample size */
	double tail_limit;          /* every impostor score below this is in TAIL */
	double *tail;               /* ascending */
	size_t n_tail;
	char seal[65];              /* sha256 (hex) of the file as saved or loaded */
};

/** A figure with its 95% interval; LOW = 0 or HIGH = 1 where the data bounds it on one side only. */
struct match_calib_estimate {
	double value, low, high;
	int bound;   /* 0: estimated; -1: the data only gives an upper bound (value = high);
			+1: only a lower bound (value = low) */
};

/**
 * Build a calibration from N impostor SCORES (any order; not kept) measured over PEOPLE people:
 * keeps every score below TAIL_LIMIT. 0, -EINVAL (no scores, a non-finite score, bad metric),
 * -E2BIG (more than MATCH_CALIB_TAIL_MAX below the limit), -ENOMEM.
 */
int match_calib_build(struct match_calib *c, const char *model_id, const char *model_digest, int metric,
		      const char *source, const double *scores, size_t n, uint64_t people, double tail_limit);

/** Write C to PATH (atomically: a temporary file renamed over it); sets C's seal. 0 or -errno. */
int match_calib_save(struct match_calib *c, const char *path, char *err, size_t errlen);

/**
 * Read and check PATH: the format, the model it names (MODEL_DIGEST, when not NULL, must equal it:
 * -ESTALE "calibrated for another model"), an ascending finite tail below tail_limit, counts that
 * add up. 0, or -ENOENT / -EBADMSG / -ESTALE / -EFBIG / -ENOMEM with one line in ERR.
 */
int match_calib_load(struct match_calib *c, const char *path, const char *model_digest, char *err,
		     size_t errlen);

/** match_calib_load's checks on a file's LEN BYTES already read (NAME for the messages); no digest check. */
int match_calib_parse(struct match_calib *c, const void *bytes, size_t len, const char *name, char *err,
		      size_t errlen);

void match_calib_free(struct match_calib *c);

/** FMR within threshold T (score < T). */
struct match_calib_estimate match_calib_fmr(const struct match_calib *c, double t);

/** FPIR at threshold T for a watchlist of N people. */
struct match_calib_estimate match_calib_fpir(const struct match_calib *c, double t, uint64_t n);

/**
 * The threshold (score) at which FPIR for a watchlist of N people is at most TARGET: the largest
 * threshold whose measured FMR meets it. The interval is the thresholds at the ends of the FMR's
 * interval. bound = -1 where TARGET needs an FMR below what the pairs can show (the threshold is
 * then below every measured impostor, and nothing says how far below is safe).
 */
struct match_calib_estimate match_calib_threshold(const struct match_calib *c, double target_fpir, uint64_t n);

/** A passer-by's chance of a false alert against N people at false match rate FMR,
 * 1 - (1 - FMR)^N; and the FMR that gives FPIR at N people. */
double match_calib_fpir_of_fmr(double fmr, uint64_t n);
double match_calib_fmr_of_fpir(double fpir, uint64_t n);

/** Convert a matcher threshold to a calibration score and back (cosine: 1 - similarity). */
double match_calib_score_of_threshold(int metric, double threshold);
double match_calib_threshold_of_score(int metric, double score);

#endif /* MATCH_CALIB_H */
