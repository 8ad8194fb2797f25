/*
 * A model's calibration (match_calib.h): the impostor tail, its file, and the rates and
 * thresholds it supports with their 95% intervals. Pure computation besides the file's load and
 * save; any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match_calib.h"
#include "match_eval.h"
#include "vg_base.h"
#include "vg_file.h"

#define CALIB_FORMAT "vigil-calibration/1"
#define MODEL_ID_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@+-"

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* ---- rates -------------------------------------------------------------------------------- */

/* Wilson's score interval at 95% for rate P measured on N (effective) trials (match_eval.h's). */
static void wilson(double p, uint64_t n, double *low, double *high)
{
	struct match_eval_ci ci = match_eval_wilson_rate(p, (double)n);

	*low = ci.lo;
	*high = ci.hi;
}

/* Impostor scores strictly below T in the tail (T at most the tail's limit). */
static size_t count_below(const struct match_calib *c, double t)
{
	size_t lo = 0, hi = c->n_tail;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->tail[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* With no impostor within a threshold: the exact one-sided 95% bound, 1 - 0.05^(1/n) (about 3/n),
 * on the effective pairs. */
static double none_seen_bound(const struct match_calib *c)
{
	return -expm1(log(0.05) / (double)c->effective_pairs);
}

struct match_calib_estimate match_calib_fmr(const struct match_calib *c, double t)
{
	struct match_calib_estimate e = {0};
	uint64_t p = c->impostor_pairs;

	if (t > c->tail_limit) {
		/* beyond the tail: at least every stored score is within T */
		wilson((double)c->n_tail / (double)p, c->effective_pairs, &e.low, &e.high);
		e.value = e.low;
		e.high = 1;
		e.bound = 1;
		return e;
	}
	uint64_t k = count_below(c, t);
	if (k == 0) {
		e.high = none_seen_bound(c);
		e.value = e.high;
		e.bound = -1;
		return e;
	}
	e.value = (double)k / (double)p;
	wilson(e.value, c->effective_pairs, &e.low, &e.high);
	return e;
}

double match_calib_fpir_of_fmr(double fmr, uint64_t n)
{
	return fmr >= 1 ? 1 : -expm1((double)n * log1p(-fmr));
}

double match_calib_fmr_of_fpir(double fpir, uint64_t n)
{
	return fpir >= 1 ? 1 : -expm1(log1p(-fpir) / (double)n);
}

struct match_calib_estimate match_calib_fpir(const struct match_calib *c, double t, uint64_t n)
{
	struct match_calib_estimate e = match_calib_fmr(c, t);

	e.value = match_calib_fpir_of_fmr(e.value, n);
	e.low = match_calib_fpir_of_fmr(e.low, n);
	e.high = match_calib_fpir_of_fmr(e.high, n);
	return e;
}

/* The threshold that admits exactly K impostor scores of the tail (K < n_tail): its K-th score. */
static double threshold_admitting(const struct match_calib *c, size_t k)
{
	return k < c->n_tail ? c->tail[k] : c->tail_limit;
}

struct match_calib_estimate match_calib_threshold(const struct match_calib *c, double target_fpir, uint64_t n)
{
	struct match_calib_estimate e = {0};
	uint64_t p = c->impostor_pairs;
	double fmr = match_calib_fmr_of_fpir(target_fpir, n), lo, hi;
	uint64_t k_max = (uint64_t)floor(fmr * (double)p);

	if (k_max >= c->n_tail) {
		/* the target allows more impostors than the tail holds: a threshold of at least its limit */
		e.value = e.low = c->tail_limit;
		e.high = INFINITY;
		e.bound = 1;
		return e;
	}
	e.value = threshold_admitting(c, k_max);
	/* the interval: from the count whose upper bound still meets the target (conservative) to
	 * the one whose lower bound does (optimistic) */
	size_t k_safe = k_max, k_bold = k_max;
	for (;;) {
		wilson((double)k_safe / (double)p, c->effective_pairs, &lo, &hi);
		if (k_safe == 0 ? none_seen_bound(c) <= fmr : hi <= fmr)
			break;
		if (k_safe == 0) {
			/* even no impostor within the threshold cannot show an FMR this small */
			e.bound = -1;
			e.low = -INFINITY;
			break;
		}
		k_safe--;
	}
	while (k_bold + 1 < c->n_tail) {
		wilson((double)(k_bold + 1) / (double)p, c->effective_pairs, &lo, &hi);
		if (lo > fmr)
			break;
		k_bold++;
	}
	if (e.bound == 0)
		e.low = threshold_admitting(c, k_safe);
	e.high = threshold_admitting(c, k_bold + 1 < c->n_tail ? k_bold + 1 : k_bold);
	if (e.bound == -1)
		e.value = threshold_admitting(c, 0);
	return e;
}

double match_calib_score_of_threshold(int metric, double threshold)
{
	return metric == 1 ? 1.0 - threshold : threshold;
}

double match_calib_threshold_of_score(int metric, double score)
{
	return metric == 1 ? 1.0 - score : score;
}

/* ---- building ----------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int match_calib_build(struct match_calib *c, const char *model_id, const char *model_digest, int metric,
		      const char *source, const double *scores, size_t n, uint64_t people, double tail_limit)
{
	size_t keep = 0;

	memset(c, 0, sizeof(*c));
	if (n == 0 || (metric != 0 && metric != 1) || !isfinite(tail_limit) || !model_id || !model_digest ||
	    strlen(model_id) >= sizeof(c->model_id) || strlen(model_digest) != 64)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(scores[i]))
			return -EINVAL;
		keep += scores[i] < tail_limit;
	}
	if (keep > MATCH_CALIB_TAIL_MAX)
		return -E2BIG;
	c->tail = malloc((keep ? keep : 1) * sizeof(double));
	if (!c->tail)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (scores[i] < tail_limit)
			c->tail[c->n_tail++] = scores[i];
	qsort(c->tail, c->n_tail, sizeof(double), cmp_double);
	snprintf(c->model_id, sizeof(c->model_id), "%s", model_id);
	snprintf(c->model_digest, sizeof(c->model_digest), "%s", model_digest);
	snprintf(c->source, sizeof(c->source), "%s", source ? source : "");
	c->metric = metric;
	c->impostor_pairs = n;
	c->effective_pairs = n;
	c->impostor_people = people;
	c->tail_limit = tail_limit;
	return 0;
}

void match_calib_free(struct match_calib *c)
{
	if (!c)
		return;
	free(c->tail);
	memset(c, 0, sizeof(*c));
}

/* ---- the file ------------------------------------------------------------------------------ */

static void seal_of(const void *bytes, size_t len, char seal[65])
{
	uint8_t d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, bytes, len);
	sodium_bin2hex(seal, 65, d, sizeof(d));
}

static char *calib_dump(const struct match_calib *c)
{
	json_t *tail = json_array(), *root;
	char *text;

	for (size_t i = 0; i < c->n_tail; i++)
		json_array_append_new(tail, json_real(c->tail[i]));
	root = json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:I, s:I, s:I, s:f, s:o}", "format", CALIB_FORMAT, "model", "id",
			 c->model_id, "digest", c->model_digest, "metric", c->metric ? "cosine" : "l2", "source",
			 c->source, "impostor_pairs", (json_int_t)c->impostor_pairs, "impostor_people",
			 (json_int_t)c->impostor_people, "effective_pairs", (json_int_t)c->effective_pairs, "tail_limit",
			 c->tail_limit, "tail", tail);
	if (!root)
		return NULL;
	text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(root);
	return text;
}

int match_calib_save(struct match_calib *c, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	char *text = calib_dump(c);
	size_t len;
	int fd, rc = 0;

	if (!text)
		return vg_errf(err, errlen, -ENOMEM, "calibration: out of memory");
	len = strlen(text);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		free(text);
		return vg_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = vg_errf(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
		free(text);
		return rc;
	}
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
		rc = vg_errf(err, errlen, -EIO, "%s: writing failed", tmp);
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = vg_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (rc) {
		unlink(tmp);
	} else {
		text[len] = '\n';   /* the seal covers the bytes on disk, newline included */
		seal_of(text, len + 1, c->seal);
	}
	free(text);
	return rc;
}

/* The tail: ascending, finite, below the limit, no more than the pairs. */
static int tail_parse(struct match_calib *c, json_t *tail, char *err, size_t errlen, const char *path)
{
	size_t n = json_array_size(tail);

	if (n > MATCH_CALIB_TAIL_MAX || n > c->impostor_pairs)
		return vg_errf(err, errlen, -EBADMSG, "%s: the tail holds %zu scores, more than its pairs or the %u limit",
			       path, n, MATCH_CALIB_TAIL_MAX);
	c->tail = malloc((n ? n : 1) * sizeof(double));
	if (!c->tail)
		return vg_errf(err, errlen, -ENOMEM, "%s: out of memory", path);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(tail, i);
		double s = json_number_value(v);

		if (!json_is_number(v) || !isfinite(s) || s >= c->tail_limit || (i && s < c->tail[i - 1]))
			return vg_errf(err, errlen, -EBADMSG,
				       "%s: tail score %zu is not a finite number in ascending order below tail_limit",
				       path, i);
		c->tail[i] = s;
	}
	c->n_tail = n;
	return 0;
}

static int calib_parse(struct match_calib *c, const char *text, size_t len, const char *path, char *err,
		       size_t errlen)
{
	/* text from a file: jansson takes a length, but a NUL inside would end a string early */
	if (memchr(text, '\0', len))
		return vg_errf(err, errlen, -EBADMSG, "%s: not JSON (a NUL byte inside)", path);

	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *tail = NULL;
	const char *format = NULL, *id = NULL, *digest = NULL, *metric = NULL, *source = NULL;
	json_int_t pairs = 0, people = 0, effective = 0;
	double limit = 0;
	int rc;

	if (!root)
		return vg_errf(err, errlen, -EBADMSG, "%s: not JSON (line %d: %s)", path, je.line, je.text);
	if (json_unpack_ex(root, &je, JSON_STRICT, "{s:s, s:{s:s, s:s, s:s}, s:s, s:I, s:I, s?I, s:F, s:o}", "format",
			   &format, "model", "id", &id, "digest", &digest, "metric", &metric, "source", &source,
			   "impostor_pairs", &pairs, "impostor_people", &people, "effective_pairs", &effective,
			   "tail_limit", &limit, "tail", &tail) != 0) {
		rc = vg_errf(err, errlen, -EBADMSG, "%s: not a calibration: %s", path, je.text);
		goto out;
	}
	if (strcmp(format, CALIB_FORMAT) != 0 || strlen(id) == 0 || strlen(id) >= sizeof(c->model_id) ||
	    strlen(digest) != 64 || strspn(digest, "0123456789abcdef") != 64 ||
	    (strcmp(metric, "l2") != 0 && strcmp(metric, "cosine") != 0) || pairs <= 0 || people < 2 ||
	    effective < 0 || effective > pairs ||
	    !isfinite(limit) || !json_is_array(tail)) {
		rc = vg_errf(err, errlen, -EBADMSG, "%s: not a %s file with a model id, digest, metric and counts",
			     path, CALIB_FORMAT);
		goto out;
	}
	/* the id and source reach records and terminals: model-id characters, and no control bytes */
	if (strspn(id, MODEL_ID_CHARS) != strlen(id) || has_control(source)) {
		rc = vg_errf(err, errlen, -EBADMSG, "%s: the model id or source holds characters a record cannot carry", path);
		goto out;
	}
	snprintf(c->model_id, sizeof(c->model_id), "%s", id);
	snprintf(c->model_digest, sizeof(c->model_digest), "%s", digest);
	snprintf(c->source, sizeof(c->source), "%s", source);
	c->metric = strcmp(metric, "cosine") == 0;
	c->impostor_pairs = (uint64_t)pairs;
	c->effective_pairs = effective ? (uint64_t)effective : (uint64_t)pairs;
	c->impostor_people = (uint64_t)people;
	c->tail_limit = limit;
	rc = tail_parse(c, tail, err, errlen, path);
out:
	json_decref(root);
	return rc;
}

int match_calib_parse(struct match_calib *c, const void *bytes, size_t len, const char *name, char *err,
		      size_t errlen)
{
	int rc;

	memset(c, 0, sizeof(*c));
	rc = calib_parse(c, bytes, len, name, err, errlen);
	if (rc == 0)
		seal_of(bytes, len, c->seal);
	else
		match_calib_free(c);
	return rc;
}

int match_calib_load(struct match_calib *c, const char *path, const char *model_digest, char *err,
		     size_t errlen)
{
	uint8_t *text = NULL;
	size_t len = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = vg_file_read(path, MATCH_CALIB_MAX_BYTES, &text, &len);
	if (rc)
		return vg_errf(err, errlen, rc, "%s: %s", path,
			       rc == -EFBIG ? "over the size limit" : rc == -EINVAL ? "not a regular file" : vg_strerror(rc));
	rc = match_calib_parse(c, text, len, path, err, errlen);
	if (rc == 0 && model_digest && strcmp(c->model_digest, model_digest) != 0) {
		rc = vg_errf(err, errlen, -ESTALE, "%s: calibrated for another model (%s, digest %.12s..., not %.12s...)",
			     path, c->model_id, c->model_digest, model_digest);
		match_calib_free(c);
	}
	free(text);
	return rc;
}
