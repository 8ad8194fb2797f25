/*
 * Exactness on real descriptors: the 22 face-api.js descriptors of the demo photos
 * (tests/data/golden/demo-faces.json), each enrolled with 19 jittered copies as extra enrolment
 * images would be (440 entries, dense clusters with near ties), queried with every original, with
 * each kernel, against brute force; and each face finds itself first at distance 0, within the
 * model's 0.6 threshold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "match_brute.h"
#include "vg_test.h"

#define D 128
#define FACES_MAX 64
#define COPIES 20

static float faces[FACES_MAX][D], ents[FACES_MAX * COPIES][D];
static char names[FACES_MAX * COPIES][16];

static unsigned load_faces(const char *path)
{
	FILE *f = fopen(path, "rb");
	static char buf[1 << 20];
	size_t len;
	unsigned n = 0;

	if (!f)
		return 0;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	for (char *p = buf; (p = strstr(p, "\"descriptor\"")) && (p = strchr(p, '[')) && n < FACES_MAX; n++) {
		p++;
		for (unsigned k = 0; k < D; k++) {
			char *end;

			faces[n][k] = strtof(p, &end);
			p = end + 1; /* the comma, or the closing bracket */
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	enum match_kernel kernels[] = { MATCH_KERNEL_REF, MATCH_KERNEL_AVX512 };
	struct match_entry e[FACES_MAX * COPIES];
	struct brute_entry be[FACES_MAX * COPIES];
	static struct match_result res[FACES_MAX];
	unsigned nf = argc > 1 ? load_faces(argv[1]) : 0, ne;
	uint64_t seed = 7;
	char err[200];

	if (nf < 2) {
		fprintf(stderr, "no descriptors in %s\n", argc > 1 ? argv[1] : "(no path)");
		return 1;
	}
	ne = nf * COPIES;
	for (unsigned i = 0; i < ne; i++) {
		unsigned f = i % nf; /* interleaved, so that clusters spread over shards and segments */

		for (unsigned k = 0; k < D; k++)
			ents[i][k] = faces[f][k] + (i < nf ? 0.0f : 0.01f * brute_randf(&seed));
		snprintf(names[i], sizeof(names[i]), "face%u", f);
		e[i] = (struct match_entry){ .subject = names[i], .watchlist = 1, .desc = ents[i] };
		be[i] = (struct brute_entry){ .v = ents[i], .seq = i + 1, .live = 1 };
	}
	for (unsigned ki = 0; ki < 2; ki++) {
		struct match_db_conf conf = { .d = D, .metric = MATCH_METRIC_L2, .n_shards = 3, .model = "face-api-1.7.15",
					      .kernel = kernels[ki] };
		struct match_db *db = NULL;
		struct match_ctx *ctx = NULL;

		if (!match_kernel_supported(kernels[ki]))
			continue;
		CHECK_EQ_INT(match_db_open(&db, &conf, err, sizeof(err)), 0);
		CHECK_EQ_INT(match_watchlist_set(db, 1, 0.6f), 0);
		for (unsigned i = 0; i < ne; i += 37)
			CHECK_EQ_INT(match_enroll(db, e + i, ne - i < 37 ? ne - i : 37, err, sizeof(err)),
				     ne - i < 37 ? ne - i : 37);
		CHECK_EQ_INT(match_ctx_open(&ctx, db, 2, FACES_MAX), 0);
		CHECK_EQ_INT(match_query(ctx, &faces[0][0], nf, MATCH_K_MAX, res), nf);
		for (unsigned j = 0; j < nf; j++) {
			unsigned idx[MATCH_K_MAX], got = brute_topk(be, ne, faces[j], D, MATCH_METRIC_L2, MATCH_K_MAX, idx);

			CHECK_EQ_INT(res[j].n, got);
			for (unsigned h = 0; h < got; h++)
				CHECK_EQ_INT(res[j].hit[h].seq, be[idx[h]].seq);
			CHECK_EQ_INT(res[j].hit[0].seq, j + 1); /* itself, exactly */
			CHECK(res[j].hit[0].value == 0.0f && res[j].hit[0].pass);
			CHECK(strcmp(res[j].hit[1].subject, names[j]) == 0); /* then its own jittered copies */
		}
		match_ctx_close(&ctx);
		match_db_close(&db);
	}
	fprintf(stderr, "%u real descriptors, %u entries\n", nf, ne);
	return vg_test_exit();
}
