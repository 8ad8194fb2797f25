/*
 * `vigilctl eval` (vigilctl_eval.c), its second half, on vigilctl's main thread: the descriptors
 * file, the call to match_eval_run, the calibration (match_calib) and what a person or a
 * program reads: text, or one JSON document with --json.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match_calib.h"
#include "match_eval.h"
#include "vigilctl_eval.h"
#include "vigilctl_int.h"

#define DESC_FORMAT "vigil-eval-descriptors/1"
#define DESC_FILE_MAX (256u << 20)
#define SKIPS_SHOWN 20  /* skipped images named in text; --json lists all */

/* 1 false alert in 6,000 faces, at the watchlist sizes a force runs (DESIGN.md: 16,000-17,000). */
static const double deploy_fpir = 1.0 / 6000;
static const unsigned long long deploy_sizes[] = { 100, 1000, 16000 };

static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jci(struct match_eval_ci ci)
{
	return isnan(ci.lo) ? json_null() : json_pack("[oo]", jnum(ci.lo), jnum(ci.hi));
}

static const char *metric_name(int metric)
{
	return metric == 0 ? "l2" : "cosine";
}

/* ---- the descriptors file ------------------------------------------------------------------ */

static json_t *jdesc(const float *d, unsigned dim)
{
	json_t *a = json_array();

	for (unsigned k = 0; a && k < dim; k++)
		json_array_append_new(a, json_real(d[k]));
	return a;
}

int eval_descriptors_write(const struct eval_set *s, const char *path)
{
	json_t *doc, *lab = json_array(), *nm = json_array(), *people = json_array(), *skips = json_array();
	json_error_t jerr;
	int fd, rc = 1;

	for (unsigned p = 0; p < s->n_people; p++)
		json_array_append_new(people, json_string(s->people[p]));
	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(lab, json_pack("{sssIso}", "path", s->path[i], "person", (json_int_t)s->person[i],
						     "descriptor", jdesc(&s->desc[i * s->model.descriptor_dim], s->model.descriptor_dim)));
	for (size_t i = 0; i < s->n_nonmated; i++)
		json_array_append_new(nm, json_pack("{ssso}", "path", s->nm_path[i], "descriptor",
						    jdesc(&s->nm_desc[i * s->model.descriptor_dim], s->model.descriptor_dim)));
	for (size_t i = 0; i < s->n_skips; i++)
		json_array_append_new(skips, json_pack("{ssss}", "path", s->skips[i].path, "reason", s->skips[i].why));
	doc = json_pack_ex(&jerr, 0, "{ss s{sssssssfsI} ss sb s{sIsIsIsI} sI so so so so}", "format", DESC_FORMAT, "model", "id",
			s->model.id, "digest", s->model.digest, "metric", metric_name(s->model.metric), "threshold",
			s->model.threshold, "descriptor_dim", (json_int_t)s->model.descriptor_dim, "backend", s->backend,
			"padded", s->padded, "images", "files", (json_int_t)s->files, "unreadable",
			(json_int_t)s->unreadable, "no_face", (json_int_t)s->no_face, "several_faces",
			(json_int_t)s->several, "people_without_faces", (json_int_t)s->people_empty, "skipped", skips,
			"people", people, "labelled", lab, "nonmated", nm);
	if (!doc) {
		fprintf(stderr, "vigilctl eval: --descriptors-out %s: %s\n", path, jerr.text);
		return 1;
	}
	fd = vigilctl_out_open(path);
	if (fd >= 0) {
		rc = json_dumpfd(doc, fd, JSON_COMPACT | JSON_REAL_PRECISION(9)) != 0 || close(fd) != 0;
		if (rc)
			fprintf(stderr, "vigilctl eval: --descriptors-out %s: writing failed\n", path);
	}
	json_decref(doc);
	return rc;
}

/* A descriptor array of DIM finite numbers into OUT; 0 or -1. */
static int read_desc(json_t *a, float *out, unsigned dim)
{
	if (json_array_size(a) != dim)
		return -1;
	for (unsigned k = 0; k < dim; k++) {
		json_t *v = json_array_get(a, k);

		if (!json_is_number(v) || !isfinite(json_number_value(v)))
			return -1;
		out[k] = (float)json_number_value(v);
	}
	return 0;
}

static int read_entries(struct eval_set *s, json_t *doc)
{
	json_t *people = json_object_get(doc, "people"), *lab = json_object_get(doc, "labelled");
	json_t *nm = json_object_get(doc, "nonmated"), *skips = json_object_get(doc, "skipped"), *e;
	size_t i;

	if (!json_is_array(people) || !json_is_array(lab) || !json_is_array(nm) || !json_is_array(skips))
		return -1;
	s->people = calloc(json_array_size(people) + 1, sizeof(*s->people));
	s->nm_desc = malloc((json_array_size(nm) + 1) * s->model.descriptor_dim * sizeof(float));
	s->nm_path = calloc(json_array_size(nm) + 1, sizeof(*s->nm_path));
	if (!s->people || !s->nm_desc || !s->nm_path)
		return -1;
	json_array_foreach(people, i, e) {
		if (!json_is_string(e) || !(s->people[s->n_people] = strdup(json_string_value(e))))
			return -1;
		s->n_people++;
	}
	json_array_foreach(lab, i, e) {
		json_t *p = json_object_get(e, "person"), *path = json_object_get(e, "path");

		if (eval_reserve(s) < 0 || !json_is_integer(p) || json_integer_value(p) < 0 ||
		    json_integer_value(p) >= s->n_people || !json_is_string(path) ||
		    read_desc(json_object_get(e, "descriptor"), &s->desc[s->n * s->model.descriptor_dim], s->model.descriptor_dim) < 0 ||
		    !(s->path[s->n] = strdup(json_string_value(path))))
			return -1;
		s->person[s->n++] = (unsigned)json_integer_value(p);
	}
	json_array_foreach(nm, i, e) {
		json_t *path = json_object_get(e, "path");

		if (!json_is_string(path) ||
		    read_desc(json_object_get(e, "descriptor"), &s->nm_desc[s->n_nonmated * s->model.descriptor_dim], s->model.descriptor_dim) < 0 ||
		    !(s->nm_path[s->n_nonmated] = strdup(json_string_value(path))))
			return -1;
		s->n_nonmated++;
	}
	json_array_foreach(skips, i, e)
		if (!json_is_string(json_object_get(e, "path")) || !json_is_string(json_object_get(e, "reason")) ||
		    eval_skip_add(s, json_string_value(json_object_get(e, "path")),
				  json_string_value(json_object_get(e, "reason"))) < 0)
			return -1;
	return 0;
}

int eval_descriptors_read(struct eval_set *s, const char *path)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	const char *format = NULL, *id = NULL, *digest = NULL, *metric = NULL, *backend = NULL;
	json_int_t files = 0, unreadable = 0, no_face = 0, several = 0, empty = 0, dim = 0;
	double threshold = 0;
	int padded = 0;

	if (!doc) {
		fprintf(stderr, "vigilctl eval: --descriptors %s: %s (line %d)\n", path, jerr.text, jerr.line);
		return 1;
	}
	bool header_ok =
		json_unpack(doc, "{ss s{sssssssfsI} ss sb s{sIsIsIsI} sI}", "format", &format, "model", "id", &id, "digest",
			    &digest, "metric", &metric, "threshold", &threshold, "descriptor_dim", &dim, "backend", &backend,
			    "padded", &padded, "images", "files", &files, "unreadable", &unreadable, "no_face", &no_face,
			    "several_faces", &several, "people_without_faces", &empty) == 0 &&
		strcmp(format, DESC_FORMAT) == 0 && dim >= 16 && dim <= GPU_DESCRIPTOR_MAX && dim % 16 == 0 &&
		strlen(id) < sizeof(s->model.id) && strlen(digest) < sizeof(s->model.digest);
	if (header_ok)
		s->model.descriptor_dim = (unsigned)dim; /* the entries are read at this size */
	if (!header_ok || read_entries(s, doc) < 0) {
		fprintf(stderr, "vigilctl eval: --descriptors %s: not a %s file written by vigilctl eval\n", path,
			DESC_FORMAT);
		json_decref(doc);
		return 1;
	}
	snprintf(s->model.id, sizeof(s->model.id), "%s", id);
	snprintf(s->model.digest, sizeof(s->model.digest), "%s", digest);
	s->model.metric = strcmp(metric, "l2") != 0;
	s->model.threshold = threshold;
	s->model.descriptor_dim = (unsigned)dim;
	snprintf(s->backend, sizeof(s->backend), "%s", backend);
	s->padded = padded;
	s->files = (size_t)files;
	s->unreadable = (size_t)unreadable;
	s->no_face = (size_t)no_face;
	s->several = (size_t)several;
	s->people_empty = (size_t)empty;
	json_decref(doc);
	return 0;
}

/* ---- the measure --------------------------------------------------------------------------- */

int eval_measure(const struct eval_set *s, const double *threshold, int split, unsigned fuse_k, unsigned rounds,
		 unsigned long long seed, struct match_eval_report *r)
{
	unsigned char *enrolled = NULL;
	struct match_eval_conf c = {
		.set = { s->desc, s->person, s->n, s->n_people, s->model.descriptor_dim,
			 s->model.metric ? MATCH_EVAL_COSINE : MATCH_EVAL_L2 },
		.nonmated = s->nm_desc, .n_nonmated = s->n_nonmated, .threshold = *threshold,
		.bootstrap_rounds = rounds, .seed = seed, .fuse_k = fuse_k,
	};
	int rc;

	if (split) {
		/* The first half of the people (in folder order) enrolled, the rest passers-by. */
		enrolled = calloc(s->n_people, 1);
		if (!enrolled)
			goto out_nomem;
		for (unsigned p = 0; p < (s->n_people + 1) / 2; p++)
			enrolled[p] = 1;
		c.enrolled = enrolled;
	}
	rc = match_eval_run(&c, r);
	free(enrolled);
	if (rc == -ENOMEM)
		goto out_nomem;
	if (rc < 0)
		fprintf(stderr, "vigilctl eval: the descriptors cannot be measured: %s\n", vg_strerror(rc));
	return rc < 0;
out_nomem:
	fprintf(stderr, "vigilctl eval: out of memory\n");
	return 1;
}

/* ---- calibration --------------------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/*
 * The impostor scores a calibration is built from: the labelled set's impostor pairs and, with
 * non-mated faces, every pair with one of them (each non-mated face is a person of its own).
 * Ascending, malloc'd into *OUT; the count, or 0 on ENOMEM.
 */
static size_t impostor_scores(const struct eval_set *s, const struct match_eval_report *r, double **out)
{
	size_t m = s->n_nonmated, n = r->n_impostor + m * s->n + m * (m ? m - 1 : 0) / 2, k = r->n_impostor;
	int metric = s->model.metric ? MATCH_EVAL_COSINE : MATCH_EVAL_L2;
	double *v = malloc((n + 1) * sizeof(*v));

	if (!v)
		return 0;
	memcpy(v, r->impostor, r->n_impostor * sizeof(*v));
	for (size_t i = 0; i < m; i++) {
		const float *a = &s->nm_desc[i * s->model.descriptor_dim];

		for (size_t j = 0; j < s->n; j++)
			v[k++] = match_eval_score(a, &s->desc[j * s->model.descriptor_dim], s->model.descriptor_dim, metric);
		for (size_t j = i + 1; j < m; j++)
			v[k++] = match_eval_score(a, &s->nm_desc[j * s->model.descriptor_dim], s->model.descriptor_dim, metric);
	}
	qsort(v, n, sizeof(*v), cmp_double);
	*out = v;
	return n;
}

static int calibrate(const struct eval_set *s, const struct match_eval_report *r, double tail_fmr,
		     struct match_calib *cal)
{
	char source[256];
	double *v = NULL, limit;
	size_t n = impostor_scores(s, r, &v);
	bool sup;
	int rc;

	if (!n) {
		fprintf(stderr, "vigilctl eval: out of memory\n");
		return 1;
	}
	/* The tail reaches the score at FMR 0.2: far above any threshold a deployment would use. */
	limit = match_eval_threshold_at(v, n, tail_fmr, &sup);
	snprintf(source, sizeof(source), "vigilctl eval: %zu images of %u people in %s (%s), backend %s%s%s", s->n,
		 s->n_people, s->from, s->padded ? "padded by half their size" : "as they are", s->backend,
		 s->n_nonmated ? "; non-mated: " : "", s->n_nonmated ? (s->nonmated_from ? s->nonmated_from : "the file's") : "");
	rc = match_calib_build(cal, s->model.id, s->model.digest, s->model.metric, source, v, n,
			       s->n_people + s->n_nonmated, limit);
	free(v);
	if (rc < 0)
		fprintf(stderr, "vigilctl eval: cannot build the calibration: %s\n", vg_strerror(rc));
	return rc < 0;
}


static void threshold_statement(char *buf, size_t len, const struct match_calib *cal, double fpir,
				unsigned long long n, struct match_calib_estimate e)
{
	double fmr = match_calib_fmr_of_fpir(fpir, n);

	if (e.bound < 0)
		snprintf(buf, len,
			 "NOT SUPPORTED: it needs FMR %.2g, below the 3/%llu = %.2g that these %llu impostor pairs, "
			 "worth %llu independent ones, can show; the threshold shown admits none of them, and nothing "
			 "says how far below it is safe (%.0f independent pairs would be needed)",
			 fmr, (unsigned long long)cal->effective_pairs, 3.0 / (double)cal->effective_pairs,
			 (unsigned long long)cal->impostor_pairs, (unsigned long long)cal->effective_pairs, ceil(3 / fmr));
	else if (e.bound > 0)
		snprintf(buf, len, "the threshold is at least the calibration's tail limit (FMR %.2g needed)", fmr);
	else
		snprintf(buf, len, "supported: FMR %.2g needed, measurable on %llu impostor pairs (%llu effective)", fmr,
			 (unsigned long long)cal->impostor_pairs, (unsigned long long)cal->effective_pairs);
}

json_t *eval_threshold_json(const struct match_calib *cal, double fpir, unsigned long long n,
			    const struct match_eval_ci *boot, char *text, size_t len)
{
	struct match_calib_estimate e = match_calib_threshold(cal, fpir, n);
	int metric = cal->metric;
	double lo = NAN, hi = NAN;
	char st[400], bt[96] = "";

	threshold_statement(st, sizeof(st), cal, fpir, n, e);
	if (boot && !isnan(boot->lo)) {
		lo = match_calib_threshold_of_score(metric, boot->lo);
		hi = match_calib_threshold_of_score(metric, boot->hi);
		snprintf(bt, sizeof(bt), ", people bootstrap [%.4f, %.4f]", fmin(lo, hi), fmax(lo, hi));
	}
	/* in the matcher's terms, lower end first (a cosine threshold runs the other way to its score);
	 * an end the data cannot give is "none" */
	double t_lo = match_calib_threshold_of_score(metric, e.low), t_hi = match_calib_threshold_of_score(metric, e.high);
	double low = fmin(t_lo, t_hi), high = fmax(t_lo, t_hi);
	char lo_s[32] = "none", hi_s[32] = "none";
	if (isfinite(low))
		snprintf(lo_s, sizeof(lo_s), "%.4f", low);
	if (isfinite(high))
		snprintf(hi_s, sizeof(hi_s), "%.4f", high);
	snprintf(text, len, "  FPIR %.3g (1 in %.0f) at a watchlist of %llu: threshold %.4f, 95%% [%s, %s]%s: %s\n",
		 fpir, 1 / fpir, n, match_calib_threshold_of_score(metric, e.value), lo_s, hi_s, bt, st);
	return json_pack("{sfsIsososos[oo]sbsoss}", "fpir", fpir, "watchlist", (json_int_t)n, "threshold",
			 jnum(match_calib_threshold_of_score(metric, e.value)), "low", jnum(low), "high", jnum(high),
			 "bootstrap", jnum(fmin(lo, hi)),
			 jnum(fmax(lo, hi)), "supported", e.bound >= 0, "fmr_needed", jnum(match_calib_fmr_of_fpir(fpir, n)),
			 "statement", st);
}

/* The set as the people bootstrap takes it: S's faces and non-mated faces, R's rounds and seed. */
static struct match_eval_conf boot_conf(const struct eval_set *s, const struct match_eval_report *r)
{
	return (struct match_eval_conf){
		.set = { s->desc, s->person, s->n, s->n_people, s->model.descriptor_dim,
			 s->model.metric ? MATCH_EVAL_COSINE : MATCH_EVAL_L2 },
		.nonmated = s->nm_desc, .n_nonmated = s->n_nonmated,
		.bootstrap_rounds = r->bootstrap_rounds, .seed = r->seed,
	};
}

/*
 * What CAL's pairs are worth as independent ones: its pairs over the design effect the people
 * bootstrap measures at SCORE (the threshold that matters: the target's, or the model's own),
 * so that every interval it gives from here on carries the spread between populations of people.
 */
static void calibrate_effective(const struct eval_set *s, const struct match_eval_report *r, struct match_calib *cal,
				double score)
{
	struct match_eval_conf c = boot_conf(s, r);
	double deff = 1;

	if (r->bootstrap_rounds && match_eval_fmr_design_effect(&c, score, &deff) == 0 && deff > 1)
		cal->effective_pairs = (uint64_t)fmax(1, floor((double)cal->impostor_pairs / deff));
}

/* The people bootstrap interval of the score meeting FPIR at N (NAN, NAN when unsupported). */
static struct match_eval_ci threshold_boot(const struct eval_set *s, const struct match_eval_report *r,
					   const struct match_calib *cal, double fpir, unsigned long long n)
{
	struct match_eval_conf c = boot_conf(s, r);
	struct match_eval_ci ci = { NAN, NAN };

	if (match_calib_threshold(cal, fpir, n).bound < 0 || match_eval_threshold_boot(&c, match_calib_fmr_of_fpir(fpir, n), &ci) < 0)
		return (struct match_eval_ci){ NAN, NAN };
	return ci;
}

/* ---- the report ---------------------------------------------------------------------------- */

static json_t *jpoint(const struct match_eval_point *pt, const char *false_name, const char *miss_name)
{
	return json_pack("{sfsbsos{so}s{so}sos{so}sIsIss}", "target", pt->target, "supported", pt->supported,
			 "threshold", jnum(pt->threshold), false_name, "value", jnum(pt->false_rate), miss_name,
			 "value", jnum(pt->miss_rate), "wilson", jci(pt->miss_wilson), "bootstrap",
			 "interval", jci(pt->miss_boot), "negatives", (json_int_t)pt->negatives, "positives",
			 (json_int_t)pt->positives, "statement", pt->statement);
}

static void text_point(const struct match_eval_point *pt, const char *fname, const char *mname, int boot)
{
	if (!pt->supported) {
		printf("  %s\n", pt->statement);
		return;
	}
	printf("  %s %g: threshold %.4f (%s observed %.3g%%), %s %.2f%%  95%%: Wilson [%.2f%%, %.2f%%]", fname,
	       pt->target, pt->threshold, fname, 100 * pt->false_rate, mname, 100 * pt->miss_rate,
	       100 * pt->miss_wilson.lo, 100 * pt->miss_wilson.hi);
	if (boot && !isnan(pt->miss_boot.lo))
		printf(", people bootstrap [%.2f%%, %.2f%%]", 100 * pt->miss_boot.lo, 100 * pt->miss_boot.hi);
	printf("\n");
}

static json_t *json_sets(const struct eval_set *s)
{
	json_t *skips = json_array();

	for (size_t i = 0; i < s->n_skips; i++)
		json_array_append_new(skips, json_pack("{ssss}", "path", s->skips[i].path, "reason", s->skips[i].why));
	return json_pack("{s{ssssss} ss sb ss s{sIsIsIsIsI} sI sI sI so}", "model", "id", s->model.id, "digest",
			 s->model.digest, "metric", metric_name(s->model.metric), "backend", s->backend, "padded",
			 s->padded, "labelled", s->from, "images", "read", (json_int_t)s->files, "unreadable",
			 (json_int_t)s->unreadable, "no_face", (json_int_t)s->no_face, "several_faces",
			 (json_int_t)s->several, "used", (json_int_t)(s->n + s->n_nonmated), "people", (json_int_t)s->n_people,
			 "labelled_faces", (json_int_t)s->n, "nonmated_faces", (json_int_t)s->n_nonmated, "skipped", skips);
}

static void text_sets(const struct eval_set *s)
{
	printf("vigilctl eval: %s; model %s (sha256 %s), backend %s; images %s\n", s->from, s->model.id, s->model.digest,
	       s->backend, s->padded ? "padded with black by half their size on every side" : "as they are (not padded)");
	printf("images: %zu read: %zu unreadable and %zu without a face (left out), %zu with several faces (the "
	       "highest-scoring one taken); %zu faces of %u people%s",
	       s->files, s->unreadable, s->no_face, s->several, s->n, s->n_people, s->n_nonmated ? "" : "\n");
	if (s->n_nonmated)
		printf(", and %zu non-mated faces\n", s->n_nonmated);
	if (s->people_empty)
		printf("people left out (no usable face): %zu\n", s->people_empty);
	for (size_t i = 0; i < s->n_skips && i < SKIPS_SHOWN; i++) {
		char *p = vigilctl_terminal_text(s->skips[i].path);

		printf("  left out: %s: %s\n", p ? p : "?", s->skips[i].why);
		free(p);
	}
	if (s->n_skips > SKIPS_SHOWN)
		printf("  ... and %zu more (--json lists all)\n", s->n_skips - SKIPS_SHOWN);
}

static void text_report(const struct eval_set *s, const struct match_eval_report *r, const struct eval_print *p)
{
	const struct match_eval_ident *id = &r->ident;
	const char *m = s->model.metric ? "cosine distance" : "L2";

	text_sets(s);
	printf("\nverification: %zu genuine and %zu impostor pairs (%s; a pair matches when its score <= T)\n",
	       r->n_genuine, r->n_impostor, m);
	printf("  EER %.2f%% at threshold %.4f  95%%: Wilson [%.2f%%, %.2f%%], people bootstrap [%.2f%%, %.2f%%]\n",
	       100 * r->eer, r->eer_threshold, 100 * r->eer_wilson.lo, 100 * r->eer_wilson.hi, 100 * r->eer_boot.lo,
	       100 * r->eer_boot.hi);
	printf("  at threshold %.4f: FMR %.3f%% [%.3f%%, %.3f%%], FNMR %.2f%% [%.2f%%, %.2f%%] (Wilson)\n", r->threshold,
	       100 * r->fmr, 100 * r->fmr_wilson.lo, 100 * r->fmr_wilson.hi, 100 * r->fnmr, 100 * r->fnmr_wilson.lo,
	       100 * r->fnmr_wilson.hi);
	for (int t = 0; t < MATCH_EVAL_N_FMR; t++)
		text_point(&r->at_fmr[t], "FMR", "FNMR", 1);
	printf("\nidentification (1:N as NIST FRTE): gallery of %zu (each enrolled person's first image%s); %zu mated "
	       "and %zu non-mated searches\n", id->n_enrolled, p->split ? "; --split: the other half of the people are "
	       "passers-by" : "", id->n_mated, id->n_nonmated);
	printf("  rank-1 %.2f%% [%.2f%%, %.2f%%]\n", 100 * id->rank1, 100 * id->rank1_wilson.lo, 100 * id->rank1_wilson.hi);
	if (id->n_nonmated)
		printf("  at threshold %.4f: FPIR %.2f%% [%.2f%%, %.2f%%] (Wilson)\n", r->threshold, 100 * id->fpir,
		       100 * id->fpir_wilson.lo, 100 * id->fpir_wilson.hi);
	else
		printf("  no non-mated searches: FPIR needs passers-by (--split, or --nonmated DIR)\n");
	printf("  at threshold %.4f: FNIR %.2f%% [%.2f%%, %.2f%%] (Wilson)\n", r->threshold, 100 * id->fnir,
	       100 * id->fnir_wilson.lo, 100 * id->fnir_wilson.hi);
	for (int t = 0; t < MATCH_EVAL_N_FPIR; t++)
		text_point(&id->at_fpir[t], "FPIR", "FNIR", 0);
	if (r->fusion.k) {
		printf("\nfusion: %zu people with at least %u images; one-image enrolment; %zu single-image probes, %zu "
		       "probes of %u images fused\n", r->fusion.n_people, 1 + r->fusion.k, r->fusion.n_single,
		       r->fusion.n_fused, r->fusion.k);
		for (int t = 0; t < MATCH_EVAL_N_FUSE; t++) {
			printf(" single:");
			text_point(&r->fusion.single[t], "FMR", "FNMR", 0);
			printf(" fused: ");
			text_point(&r->fusion.fused[t], "FMR", "FNMR", 0);
		}
	}
}

/* --save: CAL as MODELS/calibration.json, its path into SAVED; 0, or 1 after one line. */
static int save(struct match_calib *cal, const struct eval_set *s, const char *models, char *saved, size_t len)
{
	struct gpu_model_info info;
	char err[512];

	/* A calibration is bound to its model's digest: never save one beside other weights. */
	if (gpu_model_identify(models, &info, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl eval: --save: %s\n", err);
		return 1;
	}
	if (strcmp(info.digest, s->model.digest) != 0) {
		fprintf(stderr, "vigilctl eval: --save: the descriptors were made with model %s (sha256 %.16s...), "
				"not the one in %s (%.16s...)\n", s->model.id, s->model.digest, models, info.digest);
		return 1;
	}
	snprintf(saved, len, "%s/%s", models, MATCH_CALIB_FILE);
	if (match_calib_save(cal, saved, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl eval: --save %s: %s\n", saved, err);
		return 1;
	}
	return 0;
}

/* The whole report as one JSON document on stdout; takes DEPLOY and TARGET. The exit status. */
static int json_report(const struct eval_set *s, const struct match_eval_report *r, const struct eval_print *p,
		       const struct match_calib *cal, json_t *deploy, json_t *target, const char *saved)
{
	const struct match_eval_ident *id = &r->ident;
	json_error_t jerr;
	json_t *ver, *ident, *fusion, *doc;
	int rc;

	ver = json_pack("{sIsIs{sosos{so}so}s{sfs{soso}s{soso}}s[ooo]}", "genuine_pairs", (json_int_t)r->n_genuine,
			"impostor_pairs", (json_int_t)r->n_impostor, "eer", "value", jnum(r->eer), "threshold",
			jnum(r->eer_threshold), "bootstrap", "interval", jci(r->eer_boot), "wilson", jci(r->eer_wilson),
			"at_threshold", "threshold", r->threshold, "fmr", "value", jnum(r->fmr), "wilson",
			jci(r->fmr_wilson), "fnmr", "value", jnum(r->fnmr), "wilson", jci(r->fnmr_wilson), "at_fmr",
			jpoint(&r->at_fmr[0], "fmr", "fnmr"), jpoint(&r->at_fmr[1], "fmr", "fnmr"),
			jpoint(&r->at_fmr[2], "fmr", "fnmr"));
	ident = json_pack("{sbsIsIsIs{soso}sfs{soso}s{soso}s[oo]}", "split", p->split, "enrolled",
			  (json_int_t)id->n_enrolled, "mated_searches", (json_int_t)id->n_mated, "nonmated_searches",
			  (json_int_t)id->n_nonmated, "rank1", "value", jnum(id->rank1), "wilson", jci(id->rank1_wilson),
			  "threshold", r->threshold, "fpir", "value", jnum(id->fpir), "wilson", jci(id->fpir_wilson),
			  "fnir", "value", jnum(id->fnir), "wilson", jci(id->fnir_wilson), "at_fpir",
			  jpoint(&id->at_fpir[0], "fpir", "fnir"), jpoint(&id->at_fpir[1], "fpir", "fnir"));
	fusion = !r->fusion.k ? json_null()
		 : json_pack("{sIsIsIsI s[oo] s[oo]}", "k", (json_int_t)r->fusion.k, "people",
			     (json_int_t)r->fusion.n_people, "single_probes", (json_int_t)r->fusion.n_single,
			     "fused_probes", (json_int_t)r->fusion.n_fused, "single",
			     jpoint(&r->fusion.single[0], "fmr", "fnmr"), jpoint(&r->fusion.single[1], "fmr", "fnmr"),
			     "fused", jpoint(&r->fusion.fused[0], "fmr", "fnmr"), jpoint(&r->fusion.fused[1], "fmr", "fnmr"));
	doc = json_pack_ex(&jerr, 0, "{so so so so s{sIsIsfsIso so*} so so ss}", "set", json_sets(s), "verification", ver,
			   "identification", ident, "fusion", fusion, "calibration", "impostor_pairs",
			   (json_int_t)cal->impostor_pairs, "effective_pairs", (json_int_t)cal->effective_pairs, "tail_limit",
			   cal->tail_limit, "impostor_people", (json_int_t)cal->impostor_people, "for_1_in_6000", deploy, "target", target, "saved",
			   *saved ? json_string(saved) : json_null(), "det",
			   json_pack("{ss?ss?}", "png", p->det_png, "csv", p->det_csv), "intervals",
			   "wilson: binomial, every pair or search taken as independent (too narrow: pairs share people); "
			   "bootstrap: the people resampled with replacement, 500 rounds, fixed seed");
	if (!doc) {
		fprintf(stderr, "vigilctl eval: the report: %s\n", jerr.text);
		return 1;
	}
	rc = vigilctl_print_json(doc);
	json_decref(doc);
	return rc;
}

int eval_report(const struct eval_set *s, const struct match_eval_report *r, const struct eval_print *p)
{
	struct match_calib cal = { 0 };
	json_t *deploy = json_array(), *target = NULL;
	char lines[4][1024] = { "" }, saved[4200] = "";
	int rc = 1;

	if (calibrate(s, r, p->tail_fmr, &cal)) {
		json_decref(deploy);
		return 1;
	}
	/* the design effect where it matters: at the target's threshold, or else at the model's own */
	double deff_at = r->threshold;
	if (p->calibrate) {
		struct match_calib_estimate at_target = match_calib_threshold(&cal, p->target_fpir, p->watchlist);

		if (at_target.bound == 0)
			deff_at = at_target.value;
	}
	calibrate_effective(s, r, &cal, deff_at);
	for (size_t i = 0; i < VG_ARRAY_SIZE(deploy_sizes); i++)
		json_array_append_new(deploy, eval_threshold_json(&cal, deploy_fpir, deploy_sizes[i], NULL, lines[i], sizeof(lines[i])));
	if (p->calibrate) {
		struct match_eval_ci boot = threshold_boot(s, r, &cal, p->target_fpir, p->watchlist);

		target = eval_threshold_json(&cal, p->target_fpir, p->watchlist, &boot, lines[3], sizeof(lines[3]));
	}
	if (p->save && save(&cal, s, p->models, saved, sizeof(saved)))
		goto out;
	if (p->json) {
		rc = json_report(s, r, p, &cal, deploy, target, saved);
		deploy = target = NULL; /* taken */
		goto out;
	}
	text_report(s, r, p);
	printf("\ndeployment: 1 false alert in 6,000 faces (calibration on %llu impostor pairs of %llu people, worth %llu "
	       "independent ones by the people bootstrap; FPIR = 1 - (1 - FMR)^N)\n%s%s%s",
	       (unsigned long long)cal.impostor_pairs, (unsigned long long)cal.impostor_people,
	       (unsigned long long)cal.effective_pairs, lines[0], lines[1], lines[2]);
	if (p->calibrate)
		printf("calibration target:\n%s", lines[3]);
	if (*saved)
		printf("calibration saved: %s (seal %s)\n", saved, cal.seal);
	if (p->det_csv || p->det_png)
		printf("DET curve: %s%s%s\n", p->det_csv ? p->det_csv : "", p->det_csv && p->det_png ? ", " : "",
		       p->det_png ? p->det_png : "");
	printf("intervals (95%%): Wilson treats every pair or search as independent, too narrow because pairs share "
	       "people;\n  the people bootstrap resamples the %u people with replacement (%u rounds, fixed seed).\n",
	       s->n_people, r->bootstrap_rounds);
	rc = fflush(stdout) != 0;
out:
	json_decref(deploy);
	json_decref(target);
	match_calib_free(&cal);
	return rc;
}
