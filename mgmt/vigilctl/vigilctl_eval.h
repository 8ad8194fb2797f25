/*
 * What the files of `vigilctl eval` share (vigilctl_eval.c: options and the face nets;
 * vigilctl_eval_report.c: the descriptors file, the measure, calibration and the report;
 * vigilctl_eval_det.c: the DET curve as CSV and PNG). vigilctl's main thread only.
 */
#ifndef VIGILCTL_EVAL_H
#define VIGILCTL_EVAL_H

#include <jansson.h>
#include <stddef.h>

#include "gpu.h"
#include "match_calib.h"
#include "match_eval.h"

struct eval_skip {
	char *path;
	char why[160];
};

/* The descriptors measured, and how they were made. Descriptors are zeroed when it is freed. */
struct eval_set {
	struct gpu_model_info model;
	char backend[64];
	int padded;
	const char *from;            /* LABELLED_DIR, or the --descriptors file */
	const char *nonmated_from;   /* --nonmated DIR, or NULL */
	float *desc;                 /* n x model.descriptor_dim, labelled */
	unsigned *person;            /* n labels, index into people */
	char **path;
	size_t n, cap;
	char **people;               /* folder names */
	unsigned n_people;
	size_t people_empty;         /* folders with no usable face */
	float *nm_desc;              /* n_nonmated x model.descriptor_dim */
	char **nm_path;
	size_t n_nonmated;
	size_t files, unreadable, no_face, several; /* images read, and what became of them */
	struct eval_skip *skips;
	size_t n_skips, cap_skips;
};

struct eval_print {
	int json, split, calibrate, save;
	const char *models, *det_png, *det_csv;
	double target_fpir, tail_fmr;
	unsigned long long watchlist;
};

void eval_set_free(struct eval_set *s);
int eval_skip_add(struct eval_set *s, const char *path, const char *why);
int eval_reserve(struct eval_set *s);
int eval_grow(void **p, size_t *cap, size_t n, size_t size);

/* The descriptors file (--descriptors-out / --descriptors): 0, or 1 after one line on stderr. */
int eval_descriptors_write(const struct eval_set *s, const char *path);
int eval_descriptors_read(struct eval_set *s, const char *path);

/* match_eval_run over S (--split: the first half of the people enrolled); 0, or 1 after one line. */
int eval_measure(const struct eval_set *s, const double *threshold, int split, unsigned fuse_k, unsigned rounds,
		 unsigned long long seed, struct match_eval_report *r);
/* Print R (text or JSON), calibrate and save when asked; the exit status. */
int eval_report(const struct eval_set *s, const struct match_eval_report *r, const struct eval_print *p);

/*
 * The threshold for FPIR at a watchlist of N from CAL, as a line of TEXT ("  FPIR ... at a
 * watchlist of N: threshold T, 95% [lo, hi]: supported | NOT SUPPORTED: why") and as JSON. With
 * BOOT (eval's --calibrate target), also the people bootstrap interval of that threshold.
 * `vigilctl model` prints the same lines from a saved calibration.
 */
json_t *eval_threshold_json(const struct match_calib *cal, double fpir, unsigned long long n,
			    const struct match_eval_ci *boot, char *text, size_t len);

/* The DET curve as threshold,fmr,fnmr lines, or drawn on log axes; 0, or 1 after one line. */
int eval_det_csv(const struct match_eval_report *r, const char *path);
int eval_det_png(const struct match_eval_report *r, const struct eval_set *s, const char *path);

#endif /* VIGILCTL_EVAL_H */
