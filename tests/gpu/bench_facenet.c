/*
 * Benchmark: the C face nets on face-api's six demo photos, for the oneDNN fp32, oneDNN bf16 and
 * reference backends: SSD detection per frame and descriptor (alignment + 128-d net) per face, medians.
 * Threads: OMP_NUM_THREADS (bench_facenet.sh runs 1 and 2). Prints one line per figure;
 * bench_facenet.sh puts tfjs-wasm's figures beside them.
 *   bench_facenet SOURCE_ROOT [ROUNDS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vg_bench.h"
#include "gpu.h"
#include "vg_clock.h"
#include "vg_image.h"

#define NIMG 6

/* The median of the N timings at NS, in ms; 0 for none (a backend that found no faces). */
static double median_ms(uint64_t *ns, int n)
{
	return n ? vg_bench_median_s(ns, (size_t)n) * 1e3 : 0;
}

int main(int argc, char **argv)
{
	struct vg_image img[NIMG];
	static struct gpu_face faces[NIMG][GPU_MAX_FACES], tmp[GPU_MAX_FACES];
	int nf[NIMG];
	struct gpu_model *m = NULL;
	char path[1024], err[512];
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	const char *threads = getenv("OMP_NUM_THREADS");

	if (argc < 2)
		return 2;
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/model", argv[1]);
	if (gpu_model_open(&m, path, err, sizeof(err))) {
		fprintf(stderr, "bench_facenet: %s\n", err);
		return 77;
	}
	for (int i = 0; i < NIMG; i++) {
		snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample%d.jpg", argv[1], i + 1);
		if (vg_image_load(path, &img[i], err, sizeof(err))) {
			fprintf(stderr, "bench_facenet: %s\n", err);
			return 77;
		}
		nf[i] = gpu_faces_run(m, img[i].rgb, img[i].width, img[i].height, faces[i], GPU_MAX_FACES);
	}
	for (int b = 0; b < 3; b++) {
		int r = b < 2 ? rounds : 1;   /* the reference is ~6x slower: one round */
		uint64_t det[NIMG * 16], desc[NIMG * GPU_MAX_FACES * 16], descb[NIMG * 16];
		int nd = 0, nd2 = 0, nd3 = 0;

		if (gpu_model_set_backend(m, b == 0 ? GPU_BACKEND_ONEDNN : b == 1 ? GPU_BACKEND_ONEDNN_BF16 :
					  GPU_BACKEND_REFERENCE) == -ENOTSUP) {
			printf("c-onednn-bf16: no bf16 kernels on this CPU\n");
			continue;
		}
		for (int k = 0; k < r && k < 16; k++) {
			for (int i = 0; i < NIMG; i++) {
				uint64_t t0 = vg_clock_ns();

				gpu_faces_detect(m, img[i].rgb, img[i].width, img[i].height, tmp, GPU_MAX_FACES);
				det[nd++] = vg_clock_ns() - t0;
				for (int f = 0; f < nf[i]; f++) {
					tmp[0] = faces[i][f];
					t0 = vg_clock_ns();
					gpu_faces_describe(m, img[i].rgb, img[i].width, img[i].height, tmp, 1);
					desc[nd2++] = vg_clock_ns() - t0;
				}
				/* the image's faces as one batch: ms per face */
				memcpy(tmp, faces[i], (size_t)nf[i] * sizeof(tmp[0]));
				t0 = vg_clock_ns();
				gpu_faces_describe(m, img[i].rgb, img[i].width, img[i].height, tmp, nf[i]);
				if (nf[i] > 0)
					descb[nd3++] = (vg_clock_ns() - t0) / nf[i];
			}
		}
		{
			double dm = median_ms(det, nd), em = median_ms(desc, nd2), bm = median_ms(descb, nd3);

			printf("c-%s threads=%s detect_ms_per_frame=%.2f frames_per_s=%.2f descriptor_ms=%.2f descriptors_per_s=%.1f descriptor_gflops=%.1f batched_descriptor_ms=%.2f\n",
			       b == 0 ? "onednn" : b == 1 ? "onednn-bf16" : "reference", threads ? threads : "default", dm, 1e3 / dm, em,
			       1e3 / em, 0.542 / (em / 1e3), bm);
		}
	}
	{   /* the tiny detector, oneDNN fp32: detection + landmarks + descriptors per frame */
		uint64_t t[NIMG * 16];
		int nt = 0;

		gpu_model_set_backend(m, GPU_BACKEND_ONEDNN);
		for (int k = 0; k < rounds && k < 16; k++) {
			for (int i = 0; i < NIMG; i++) {
				uint64_t t0 = vg_clock_ns();
				int n = gpu_faces_run_tiny(m, img[i].rgb, img[i].width, img[i].height, tmp, GPU_MAX_FACES);

				t[nt++] = vg_clock_ns() - t0;
				gpu_faces_retire(tmp, n > 0 ? n : 0);
			}
		}
		printf("c-onednn-tiny threads=%s whole_pipeline_ms_per_frame=%.2f\n", threads ? threads : "default",
		       median_ms(t, nt));
	}
	gpu_faces_retire(&faces[0][0], NIMG * GPU_MAX_FACES);
	for (int i = 0; i < NIMG; i++)
		vg_image_release(&img[i]);
	gpu_model_close(&m);
	return 0;
}
