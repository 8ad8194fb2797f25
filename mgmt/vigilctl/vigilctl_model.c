/*
 * `vigilctl model [--json] [--models DIR]`: which face model this is and what its calibration says,
 * no daemon needed. The model's identity (gpu_model_identify: the id watchlists carry, the digest
 * a calibration is bound to, descriptor size, metric, default threshold) and, when DIR holds a
 * calibration.json for this very model, what it supports: the false positive identification rate
 * at the default threshold and the threshold for 1 false alert in 6,000 faces, at watchlists of
 * 100, 1,000 and 16,000 people, each with its 95% interval or the plain bound the data allows.
 * Exit 1 when the model cannot be identified or its calibration is unreadable or another model's;
 * a model without a calibration is a fact to print, not an error.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gpu.h"
#include "match_calib.h"
#include "vigilctl_eval.h"
#include "vigilctl_int.h"

static const uint64_t sizes[] = { 100, 1000, 16000 };
#define TARGET_FPIR (1.0 / 6000)   /* the NPL's operating point: 1 false alert in 6,000 faces */

static json_t *estimate_json(struct match_calib_estimate e)
{
	json_t *j = json_pack("{s:s}", "bound", e.bound < 0 ? "at most" : e.bound > 0 ? "at least" : "estimate");

	json_object_set_new(j, "value", json_real(e.value));
	if (isfinite(e.low))
		json_object_set_new(j, "low", json_real(e.low));
	if (isfinite(e.high))
		json_object_set_new(j, "high", json_real(e.high));
	return j;
}

static void text_estimate(const char *what, struct match_calib_estimate e)
{
	if (e.bound < 0)
		printf("%s: at most %.4g (the pairs cannot show less)\n", what, e.high);
	else if (e.bound > 0)
		printf("%s: at least %.4g (beyond the calibrated tail)\n", what, e.low);
	else
		printf("%s: %.4g (95%%: %.4g to %.4g)\n", what, e.value, e.low, e.high);
}

static void report(const struct gpu_model_info *m, const struct match_calib *c, bool json)
{
	double score = match_calib_score_of_threshold(m->metric, m->threshold);
	json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:f}", "id", m->id, "digest", m->digest, "descriptor_dim",
			      (int)m->descriptor_dim, "metric", m->metric ? "cosine" : "l2", "threshold", m->threshold);

	if (!json) {
		printf("model %s (digest %s): %u-d descriptors, %s, default threshold %.3g\n", m->id, m->digest,
		       m->descriptor_dim, m->metric ? "cosine" : "L2", m->threshold);
		if (!c)
			printf("no calibration: the false alerts it raises cannot be stated (vigilctl eval --calibrate --save)\n");
	}
	if (c) {
		json_t *cj = json_pack("{s:s, s:s, s:I, s:I, s:o}", "seal", c->seal, "source", c->source, "impostor_pairs",
				       (json_int_t)c->impostor_pairs, "impostor_people", (json_int_t)c->impostor_people,
				       "fmr_at_threshold", estimate_json(match_calib_fmr(c, score)));
		json_t *sizes_j = json_array();

		if (!json) {
			printf("calibration %s: %llu impostor pairs of %llu people (%s)\n", c->seal,
			       (unsigned long long)c->impostor_pairs, (unsigned long long)c->impostor_people, c->source);
			text_estimate("  false match rate at the default threshold", match_calib_fmr(c, score));
		}
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			struct match_calib_estimate f = match_calib_fpir(c, score, sizes[i]);
			char line[1024];
			/* the same line and figures as vigilctl eval's (matcher terms, not scores) */
			json_t *tj = eval_threshold_json(c, TARGET_FPIR, sizes[i], NULL, line, sizeof(line));

			json_array_append_new(sizes_j, json_pack("{s:I, s:o, s:o}", "watchlist_size", (json_int_t)sizes[i],
								 "fpir_at_threshold", estimate_json(f),
								 "threshold_for_1_in_6000", tj));
			if (!json) {
				char what[96];

				snprintf(what, sizeof(what), "  a passer-by's chance of a false alert at %5llu people",
					 (unsigned long long)sizes[i]);
				text_estimate(what, f);
				fputs(line, stdout);
			}
		}
		json_object_set_new(cj, "watchlists", sizes_j);
		json_object_set_new(j, "calibration", cj);
	}
	if (json)
		vigilctl_print_json(j);
	json_decref(j);
}

int vigilctl_model(int argc, char **argv)
{
	const char *models = NULL;
	bool json = vigilctl_global.json;
	struct gpu_model_info info;
	struct match_calib calib;
	char err[600], path[600];
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--models") == 0 && i + 1 < argc)
			models = argv[++i];
		else if (strcmp(argv[i], "--help") == 0)
			return printf("usage: vigilctl model [--json] [--models DIR]\n"), 0;
		else
			return vigilctl_usage("unexpected '%s'", argv[i]);
	}
	models = vigilctl_models(models);
	if ((rc = gpu_model_identify(models, &info, err, sizeof(err))) < 0) {
		fprintf(stderr, "vigilctl model: %s\n", err);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", models, MATCH_CALIB_FILE);
	rc = match_calib_load(&calib, path, info.digest, err, sizeof(err));
	if (rc < 0 && rc != -ENOENT) {
		fprintf(stderr, "vigilctl model: %s\n", err);
		return 1;
	}
	report(&info, rc == 0 ? &calib : NULL, json);
	match_calib_free(&calib);
	return 0;
}
