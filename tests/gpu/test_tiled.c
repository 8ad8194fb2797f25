/*
 * Small faces in camera frames: face-api's demo photo sample1 (3 faces) shrunk and pasted into a
 * mid-grey 1920x1080 frame, at several sizes. The whole-frame pass alone (gpu_faces_run, face-api's
 * own behaviour) loses the faces once they are small; the tiled pass (gpu_faces_run_tiled) must
 * still find all three, with their descriptors close to those of the full-size faces (same
 * people), and on the full-size photo add no duplicate of its large faces. Prints the face heights at each scale: the smallest face found reliably.
 *   test_tiled SOURCE_ROOT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "vg_image.h"
#include "vg_pool.h"
#include "vg_test.h"

#define FW 1920
#define FH 1080

/* Area-average downscale of SRC by 1/F into the frame at (X0, Y0). */
static void paste_scaled(const struct vg_image *src, double f, uint8_t *frame, int x0, int y0)
{
	int dw = (int)(src->width / f), dh = (int)(src->height / f);

	for (int y = 0; y < dh && y0 + y < FH; y++) {
		for (int x = 0; x < dw && x0 + x < FW; x++) {
			int sx0 = (int)(x * f), sx1 = (int)((x + 1) * f), sy0 = (int)(y * f), sy1 = (int)((y + 1) * f);
			for (int c = 0; c < 3; c++) {
				unsigned sum = 0, n = 0;
				for (int sy = sy0; sy < sy1 && sy < (int)src->height; sy++)
					for (int sx = sx0; sx < sx1 && sx < (int)src->width; sx++, n++)
						sum += src->rgb[((size_t)sy * src->width + sx) * 3 + c];
				frame[((size_t)(y0 + y) * FW + x0 + x) * 3 + c] = (uint8_t)(n ? sum / n : 128);
			}
		}
	}
}

int main(int argc, char **argv)
{
	static struct gpu_face ref[GPU_MAX_FACES], got[GPU_MAX_FACES];
	static const double shrink[] = {2.0, 4.0, 5.0, 6.0};
	struct gpu_model *m = NULL;
	struct vg_image img = {0};
	char path[1024], err[512];
	uint8_t *frame;
	int nref;
	const char *req = getenv("VIGIL_REQUIRE_FETCHED");

	if (argc < 2)
		return 2;
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/model", argv[1]);
	if (gpu_model_open(&m, path, err, sizeof(err))) {
		fprintf(stderr, "test_tiled: %s\n", err);
		return req && strcmp(req, "1") == 0 ? 1 : VG_TEST_SKIP;
	}
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample1.jpg", argv[1]);
	if (vg_image_load(path, &img, err, sizeof(err))) {
		fprintf(stderr, "test_tiled: %s\n", err);
		gpu_model_close(&m);
		return req && strcmp(req, "1") == 0 ? 1 : VG_TEST_SKIP;
	}
	nref = gpu_faces_run(m, img.rgb, img.width, img.height, ref, GPU_MAX_FACES);
	CHECK_EQ_INT(nref, 3);
	/* large faces: the tiles must not add parts of them (no duplicates), and the faces are the
	 * whole-frame pass's own */
	{
		int nt = gpu_faces_run_tiled(m, img.rgb, img.width, img.height, 192, got, GPU_MAX_FACES);
		int same = 0;

		CHECK_EQ_INT(nt, 3);
		for (int i = 0; i < nt; i++)
			for (int r = 0; r < nref; r++)
				same += gpu_descriptor_distance(got[i].descriptor, ref[r].descriptor) < 1e-6;
		CHECK_EQ_INT(same, 3);
		gpu_faces_retire(got, nt > 0 ? nt : 0);
	}
	frame = malloc((size_t)FW * FH * 3);
	if (!frame)
		return 1;
	for (size_t s = 0; s < sizeof(shrink) / sizeof(shrink[0]); s++) {
		int nplain, ntiled, matched = 0;
		double minh = 1e9;

		memset(frame, 128, (size_t)FW * FH * 3);
		paste_scaled(&img, shrink[s], frame, 700, 300);   /* away from tile-aligned spots */
		nplain = gpu_faces_run(m, frame, FW, FH, got, GPU_MAX_FACES);
		gpu_faces_retire(got, nplain > 0 ? nplain : 0);
		ntiled = gpu_faces_run_tiled(m, frame, FW, FH, 192, got, GPU_MAX_FACES);
		for (int i = 0; i < ntiled; i++) {
			double best = 9;
			for (int r = 0; r < nref; r++) {
				double dd = gpu_descriptor_distance(got[i].descriptor, ref[r].descriptor);
				best = dd < best ? dd : best;
			}
			matched += best < GPU_MATCH_THRESHOLD;
			if (got[i].box[3] < minh)
				minh = got[i].box[3];
		}
		printf("shrink %.1f: face heights from %.0f px; whole-frame pass finds %d, tiled %d (%d match the full-size faces at 0.6)\n",
		       shrink[s], minh, nplain, ntiled, matched);
		if (shrink[s] <= 5.0) {   /* faces >= 48 px high (the aim: ~40 px) */
			CHECK_EQ_INT(ntiled, 3);
			CHECK_EQ_INT(matched, 3);
		}
		gpu_faces_retire(got, ntiled > 0 ? ntiled : 0);
	}
	vg_scrub(frame, (size_t)FW * FH * 3);
	free(frame);
	gpu_faces_retire(ref, GPU_MAX_FACES);
	vg_image_release(&img);
	gpu_model_close(&m);
	return vg_test_exit();
}
