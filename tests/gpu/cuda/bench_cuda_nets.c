/*
 * The face nets on the GPU against the CPU backend (oneDNN, fp32, every core) in the same run,
 * and as a fraction of the GPU's measured fp32 FMA peak (gpu_cuda_peak_gflops):
 *   descriptors per second at batch 1, 32 and 256 (fp32 and fp16 cuDNN modes; CPU at batch 8);
 *   detector passes (512x512) per second at batch 1 and 4, landmark crops per second at 32;
 *   1080p frames per second through the whole face pipeline with 5 faces a frame, from those
 *     rates: 19 detector passes (gpu_faces_run_tiled at overlap 192: 18 tiles and the whole
 *     frame) + 5 landmark crops + 5 descriptors;
 *   latency of one descriptor at batch 1 (host to host).
 * Medians of 9 timed runs after a warm-up. Inputs are a real aligned crop of sample1.jpg repeated
 * (the nets' cost does not depend on the pixels). Skips (77) where there is no GPU.
 *   bench_cuda_nets SOURCE_ROOT
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../gpu/gpu_int.h"
#include "vg_bench.h"
#include "gpu_cuda.h"
#include "vg_clock.h"
#include "vg_image.h"

#define RUNS 9
#define REC_GFLOP 0.542   /* face-nets.md: per face */
#define LM_GFLOP 0.103
#define SSD_GFLOP 6.29

/* The median of the RUNS timings at T, in seconds. */
static double median_s(uint64_t *t)
{
	return vg_bench_median_s(t, RUNS);
}

enum pass { REC, LM, SSD };

/* Median seconds of one call of PASS at batch NB on N. */
static double time_pass(struct gpu_cuda_nets *n, enum pass p, int nb, const float *in,
			float *out, float *out2)
{
	uint64_t t[RUNS];

	for (int r = -1; r < RUNS; r++) {
		uint64_t t0 = vg_clock_ns();
		int rc = 0;

		if (p == REC)
			rc = gpu_cuda_nets_rec(n, in, nb, out);
		else if (p == LM)
			rc = gpu_cuda_nets_lm(n, in, nb, out);
		else
			rc = gpu_cuda_nets_ssd(n, in, nb, out, out2);
		if (rc) {
			fprintf(stderr, "bench_cuda_nets: pass failed: %s\n", gpu_cuda_last_error());
			exit(1);
		}
		if (r >= 0)
			t[r] = vg_clock_ns() - t0;
	}
	return median_s(t);
}

int main(int argc, char **argv)
{
	static const int rec_batches[] = {1, 32, 256};
	static const char *mode_name[] = {"exact", "fp32", "fp16"};
	struct gpu_cuda_device_info info;
	struct gpu_model *m = NULL;
	struct vg_image img;
	char path[1024], err[512];
	float *in, *out, *out2, *crop;
	double peak, cpu_rec;

	if (argc < 2)
		return 2;
	if (gpu_cuda_device_count() <= 0 || gpu_cuda_device_info(0, &info)) {
		fprintf(stderr, "bench_cuda_nets: no CUDA device here: skipped\n");
		return 77;
	}
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/model", argv[1]);
	if (gpu_model_open(&m, path, err, sizeof(err)))
		return fprintf(stderr, "bench_cuda_nets: %s\n", err), 1;
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample1.jpg", argv[1]);
	if (vg_image_load(path, &img, err, sizeof(err)))
		return fprintf(stderr, "bench_cuda_nets: %s\n", err), 1;
	in = malloc((size_t)256 * 150 * 150 * 3 * sizeof(float));
	crop = calloc((size_t)512 * 512 * 3, sizeof(float));
	out = malloc((size_t)256 * GPU_SSD_ANCHORS * 4 * sizeof(float));
	out2 = malloc((size_t)256 * GPU_SSD_ANCHORS * sizeof(float));
	if (!in || !crop || !out || !out2)
		return 1;
	gpu_to_batch_ref(img.rgb, 150, 150, (size_t)img.width * 3, 150, 1, crop);
	for (int i = 0; i < 256; i++)
		memcpy(in + (size_t)i * 150 * 150 * 3, crop, 150 * 150 * 3 * sizeof(float));
	peak = gpu_cuda_peak_gflops(0);
	printf("%s, %d SMs: measured fp32 FMA peak %.0f GFLOP/s\n", info.name, info.multiprocessors, peak);

	/* the CPU peer: oneDNN fp32 at the CPU backend's batch of 8, on every core */
	{
		struct gpu_dnnl *d = NULL;
		uint64_t t[RUNS];

		if (gpu_dnnl_create(&d, 0, err, sizeof(err)))
			return fprintf(stderr, "bench_cuda_nets: %s\n", err), 1;
		for (int r = -1; r < RUNS; r++) {
			uint64_t t0 = vg_clock_ns();

			gpu_rec_forward((struct gpu_rec *)gpu_model_rec(m), d, in, GPU_REC_BATCH, out);
			if (r >= 0)
				t[r] = vg_clock_ns() - t0;
		}
		cpu_rec = GPU_REC_BATCH / median_s(t);
		gpu_dnnl_destroy(&d);
		printf("CPU (oneDNN fp32, batch %d): %.0f descriptors/s\n", GPU_REC_BATCH, cpu_rec);
	}

	for (int mode = GPU_CUDA_EXACT; mode <= GPU_CUDA_FP16; mode++) {
		struct gpu_cuda_nets *n = NULL;
		double ssd1, ssd4, lm32, rec256 = 0, fps;

		if (gpu_cuda_nets_create(&n, m, 0, mode, 256, err, sizeof(err)))
			return fprintf(stderr, "bench_cuda_nets: %s\n", err), 1;
		printf("mode %s (%d cuDNN fallbacks):\n", mode_name[mode], gpu_cuda_nets_fallbacks(n));
		for (size_t b = 0; b < sizeof(rec_batches) / sizeof(rec_batches[0]); b++) {
			int nb = rec_batches[b];
			double s = time_pass(n, REC, nb, in, out, NULL), rate = nb / s;

			if (nb == 256)
				rec256 = rate;
			printf("  descriptors, batch %3d: %9.0f /s (%.1f%% of peak), %6.3f ms a batch; CPU %.0f /s; "
			       "ratio %.1f\n",
			       nb, rate, 100.0 * rate * REC_GFLOP / peak, s * 1e3, cpu_rec, rate / cpu_rec);
		}
		ssd1 = 1.0 / time_pass(n, SSD, 1, crop, out, out2);
		ssd4 = 4.0 / time_pass(n, SSD, 4, in, out, out2);
		lm32 = 32.0 / time_pass(n, LM, 32, in, out, NULL);
		printf("  detector 512: %.0f passes/s at batch 1, %.0f at 4 (%.1f%% of peak); landmarks %.0f crops/s\n",
		       ssd1, ssd4, 100.0 * ssd4 * SSD_GFLOP / peak, lm32);
		fps = 1.0 / (19.0 / ssd4 + 5.0 / lm32 + 5.0 / rec256);
		printf("  1080p, 5 faces a frame (19 detector passes): %.0f frames/s from these rates\n", fps);
		printf("  latency, one descriptor host to host: %.3f ms\n",
		       1e3 * time_pass(n, REC, 1, in, out, NULL));
		gpu_cuda_nets_destroy(&n);
	}
	vg_image_release(&img);
	free(in);
	free(crop);
	free(out);
	free(out2);
	gpu_model_close(&m);
	return 0;
}
