/*
 * The whole face pipeline on the GPU (gpu_cuda_faces: detector, landmarks, alignment, descriptors,
 * quality, and the watchlist scan on the device) against the CPU backend in the same run, and as
 * a fraction of the GPU's measured fp32 FMA peak (gpu_cuda_peak_gflops), on a 1920x1080 frame
 * made of two demo photos side by side (sample1 and sample4: 5 faces, as the CPU finds them):
 *   1080p frames per second through the pipeline at batch 1, 8 and 32, the frames in device memory
 *     as NVDEC leaves them (NV12), and at batch 32 from host memory (I420, copied per batch);
 *   the same with tiled detection (19 detector inputs a frame) at batch 8;
 *   latency from a frame to its faces' matches at batch 1: the pipeline, then match_query_device
 *     over a watchlist of 16,384 entries on the device;
 *   the CPU's figure: gpu_faces_run (oneDNN fp32) on the same frame, a frame at a time.
 * Goals (the issue): 1,500 frames/s through the whole pipeline, batch-1 latency under 2 ms.
 * Medians of 9 timed runs after two warm-ups (the second replays the CUDA graphs). Skips (77)
 * where there is no GPU.
 *   bench_cuda_faces SOURCE_ROOT
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "../../../gpu/gpu_int.h"
#include "vg_bench.h"
#include "gpu_cuda.h"
#include "match.h"
#include "vg_clock.h"
#include "vg_image.h"

#define RUNS 9
#define W 1920
#define H 1080
#define BATCH_MAX 32
#define REC_GFLOP 0.542   /* face-nets.md: per face */
#define LM_GFLOP 0.103
#define SSD_GFLOP 6.29    /* per 512 input */
#define WATCHLIST 16384

/* The median of the RUNS timings at T, in seconds. */
static double median_s(uint64_t *t)
{
	return vg_bench_median_s(t, RUNS);
}

/* SRC scaled (nearest) to DW x DH at (X, Y) of the W x H RGB frame DST. */
static void paste(uint8_t *dst, const struct vg_image *src, int x, int y, int dw, int dh)
{
	for (int r = 0; r < dh && y + r < H; r++)
		for (int c = 0; c < dw && x + c < W; c++)
			memcpy(dst + ((size_t)(y + r) * W + x + c) * 3,
			       src->rgb + ((size_t)(r * (int)src->height / dh) * src->width + c * (int)src->width / dw) * 3, 3);
}

/* BT.601 limited range, the camera's way: RGB to I420 planes Y, U, V (2x2 chroma averages). */
static void to_i420(const uint8_t *rgb, uint8_t *y, uint8_t *u, uint8_t *v)
{
	for (int r = 0; r < H; r++)
		for (int c = 0; c < W; c++) {
			const uint8_t *p = rgb + ((size_t)r * W + c) * 3;

			y[(size_t)r * W + c] = (uint8_t)((66 * p[0] + 129 * p[1] + 25 * p[2] + 128) / 256 + 16);
		}
	for (int r = 0; r < H / 2; r++)
		for (int c = 0; c < W / 2; c++) {
			int sr = 0, sg = 0, sb = 0;

			for (int k = 0; k < 4; k++) {
				const uint8_t *p = rgb + ((size_t)(2 * r + k / 2) * W + 2 * c + k % 2) * 3;

				sr += p[0], sg += p[1], sb += p[2];
			}
			sr /= 4, sg /= 4, sb /= 4;
			u[(size_t)r * W / 2 + c] = (uint8_t)((-38 * sr - 74 * sg + 112 * sb + 128) / 256 + 128);
			v[(size_t)r * W / 2 + c] = (uint8_t)((112 * sr - 94 * sg - 18 * sb + 128) / 256 + 128);
		}
}

/* Median seconds of one batch of NB copies of FRAME through P (after two warm-ups). */
static double time_batch(struct gpu_cuda_faces *p, const struct gpu_cuda_frame *frame, int nb, int *faces)
{
	static struct gpu_face out[BATCH_MAX * 32];
	struct gpu_cuda_frame fr[BATCH_MAX];
	int counts[BATCH_MAX];
	uint64_t t[RUNS];

	for (int i = 0; i < nb; i++)
		fr[i] = *frame;
	for (int r = -2; r < RUNS; r++) {
		uint64_t t0 = vg_clock_ns();
		int n = gpu_cuda_faces_run(p, fr, nb, 0, out, BATCH_MAX * 32, counts);

		if (n < 0) {
			fprintf(stderr, "bench_cuda_faces: batch failed: %s\n", gpu_cuda_last_error());
			exit(1);
		}
		gpu_cuda_faces_retire(p);
		if (r >= 0)
			t[r] = vg_clock_ns() - t0;
		*faces = counts[0];
	}
	return median_s(t);
}

static const char *const mode_name[] = {"exact", "fp32", "fp16"};

/* The CPU peer: the CPU backend on the same pixels (converted as the appliance converts); frames/s. */
static double cpu_peer(struct gpu_model *m, const uint8_t *yp, const uint8_t *up, const uint8_t *vp)
{
	static struct gpu_face cpu_faces[32];
	static uint8_t conv[W * H * 3];
	uint64_t t[RUNS];
	double cpu_fps;
	int cpu_n = 0;

	gpu_yuv420_to_rgb(yp, W, up, vp, W / 2, W, H, conv);
	for (int r = -1; r < RUNS; r++) {
		uint64_t t0 = vg_clock_ns();

		cpu_n = gpu_faces_run(m, conv, W, H, cpu_faces, 32);
		if (r >= 0)
			t[r] = vg_clock_ns() - t0;
	}
	cpu_fps = 1.0 / median_s(t);
	printf("CPU (oneDNN fp32, a frame at a time): %.1f frames/s, %d faces a frame\n", cpu_fps, cpu_n);
	return cpu_fps;
}

/*
 * Each mode's frames/s at batch 1, 8 and 32 on the device frame DEV, at BATCH_MAX on the host
 * frame HOST, and tiled; against the GPU's PEAK and the CPU's CPU_FPS. 0, or 1 on an error.
 */
static int bench_modes(struct gpu_model *m, const struct gpu_cuda_frame *host, const struct gpu_cuda_frame *dev,
		       double peak, double cpu_fps)
{
	static const int batches[] = {1, 8, 32};
	char err[512];

	for (int mode = GPU_CUDA_EXACT; mode <= GPU_CUDA_FP16; mode++) {
		struct gpu_cuda_faces_conf conf = {.device = 0, .mode = mode, .max_frames = BATCH_MAX, .max_width = W,
						   .max_height = H, .max_faces = 32, .graphs = 1};
		struct gpu_cuda_faces *p = NULL;
		struct gpu_cuda_faces_stats st;
		int faces = 0;

		if (gpu_cuda_faces_create(&p, m, &conf, err, sizeof(err)))
			return fprintf(stderr, "bench_cuda_faces: %s\n", err), 1;
		printf("mode %s:\n", mode_name[mode]);
		for (size_t k = 0; k < sizeof(batches) / sizeof(batches[0]); k++) {
			int nb = batches[k];
			double s = time_batch(p, dev, nb, &faces), fps = nb / s;
			double gflop = SSD_GFLOP + faces * (LM_GFLOP + REC_GFLOP);

			printf("  1080p, device NV12, batch %2d: %7.0f frames/s (%d faces a frame; %.1f%% of peak), "
			       "%7.3f ms a batch; CPU %.1f frames/s; ratio %.0f\n",
			       nb, fps, faces, 100.0 * fps * gflop / peak, s * 1e3, cpu_fps, fps / cpu_fps);
		}
		{
			double s = time_batch(p, host, BATCH_MAX, &faces);

			printf("  1080p, host I420 copied per batch, batch %d: %.0f frames/s\n", BATCH_MAX, BATCH_MAX / s);
		}
		gpu_cuda_faces_stats_get(p, &st);
		printf("  graphs replayed %llu, capture failures %llu, cuDNN refusals %d, device memory %.0f MiB\n",
		       (unsigned long long)st.graph_launches, (unsigned long long)st.graph_failures, st.cudnn_fallbacks,
		       st.device_bytes / 1048576.0);
		gpu_cuda_faces_destroy(&p);

		/* tiled detection (small faces): 19 detector inputs a 1080p frame */
		conf.tiled = 1;
		conf.overlap = 192;
		conf.max_frames = 8;
		if (gpu_cuda_faces_create(&p, m, &conf, err, sizeof(err)) == 0) {
			double s = time_batch(p, dev, 8, &faces);

			printf("  1080p tiled (19 detector inputs), device NV12, batch 8: %.0f frames/s (%.1f%% of peak)\n",
			       8 / s, 100.0 * 8 / s * (19 * SSD_GFLOP + faces * (LM_GFLOP + REC_GFLOP)) / peak);
			gpu_cuda_faces_destroy(&p);
		}
	}
	return 0;
}

/* Latency: one frame (DEV) to its faces' matches, fp16 and fp32, the watchlist on the device. 0 or 1. */
static int bench_latency(struct gpu_model *m, const struct gpu_cuda_frame *dev)
{
	struct match_db_conf mc = {.d = GPU_DESCRIPTOR_DIM, .metric = MATCH_METRIC_L2, .n_shards = 1,
				   .model = "face-api-1.7.15", .kernel = MATCH_KERNEL_AUTO};
	struct match_db *db = NULL;
	struct match_ctx *ctx = NULL;
	static float wl[WATCHLIST * GPU_DESCRIPTOR_DIM];
	static struct match_entry e[WATCHLIST];
	static char subj[WATCHLIST][16];
	unsigned s = 7;
	char err[512];

	if (match_db_open(&db, &mc, err, sizeof(err)) || gpu_cuda_match_attach(db, 0, err, sizeof(err)) ||
	    match_watchlist_set(db, 1, 0.5f))
		return fprintf(stderr, "bench_cuda_faces: matcher: %s\n", err), 1;
	for (int i = 0; i < WATCHLIST; i++) {
		for (int k = 0; k < GPU_DESCRIPTOR_DIM; k++) {
			s = s * 1103515245u + 12345u;
			wl[(size_t)i * GPU_DESCRIPTOR_DIM + k] = ((float)(s >> 8 & 0xffff) / 65536.0f - 0.5f) * 0.45f;
		}
		snprintf(subj[i], sizeof(subj[i]), "s%d", i);
		e[i] = (struct match_entry){.subject = subj[i], .watchlist = 1, .desc = wl + (size_t)i * GPU_DESCRIPTOR_DIM};
	}
	if (match_enroll(db, e, WATCHLIST, err, sizeof(err)) != WATCHLIST || match_ctx_open(&ctx, db, 1, 64))
		return fprintf(stderr, "bench_cuda_faces: enrol: %s\n", err), 1;
	for (int mode = GPU_CUDA_FP32; mode <= GPU_CUDA_FP16; mode++) {
		struct gpu_cuda_faces_conf conf = {.device = 0, .mode = mode, .max_frames = 1, .max_width = W,
						   .max_height = H, .max_faces = 32, .graphs = 1};
		struct gpu_cuda_faces *p = NULL;
		static struct gpu_face out[32];
		struct match_result res[32];
		int idx[32], counts[1];
		uint64_t t[RUNS];

		if (gpu_cuda_faces_create(&p, m, &conf, err, sizeof(err)))
			return fprintf(stderr, "bench_cuda_faces: %s\n", err), 1;
		for (int r = -2; r < RUNS; r++) {
			uint64_t t0 = vg_clock_ns();
			int n = gpu_cuda_faces_run(p, dev, 1, 0, out, 32, counts);
			const float *q;

			for (int i = 0; i < n; i++)
				idx[i] = i;
			q = n > 0 ? gpu_cuda_faces_queries(p, idx, n) : NULL;
			if (!q || match_query_device(ctx, q, (unsigned)n, 1, res) != n)
				return fprintf(stderr, "bench_cuda_faces: match failed: %s\n", gpu_cuda_last_error()), 1;
			gpu_cuda_faces_retire(p);
			if (r >= 0)
				t[r] = vg_clock_ns() - t0;
		}
		printf("latency, %s: a 1080p frame to its faces' matches (watchlist %d on the device): %.3f ms "
		       "(goal 2 ms)\n", mode_name[mode], WATCHLIST, median_s(t) * 1e3);
		gpu_cuda_faces_destroy(&p);
	}
	match_ctx_close(&ctx);
	match_db_close(&db);
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t rgb[W * H * 3], yp[W * H], up[W * H / 4], vp[W * H / 4], nv12_uv[W * H / 2];
	struct gpu_cuda_device_info info;
	struct gpu_model *m = NULL;
	struct vg_image a, b;
	struct gpu_cuda_frame host, dev;
	void *dy = NULL, *duv = NULL;
	size_t py = 0, puv = 0;
	char path[1024], err[512];
	double peak, cpu_fps;

	if (argc < 2)
		return 2;
	if (gpu_cuda_device_count() <= 0 || gpu_cuda_device_info(0, &info)) {
		fprintf(stderr, "bench_cuda_faces: no CUDA device here: skipped\n");
		return 77;
	}
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/model", argv[1]);
	if (gpu_model_open(&m, path, err, sizeof(err)))
		return fprintf(stderr, "bench_cuda_faces: %s\n", err), 1;
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample1.jpg", argv[1]);
	if (vg_image_load(path, &a, err, sizeof(err)))
		return fprintf(stderr, "bench_cuda_faces: %s\n", err), 1;
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample4.jpg", argv[1]);
	if (vg_image_load(path, &b, err, sizeof(err)))
		return fprintf(stderr, "bench_cuda_faces: %s\n", err), 1;
	/* the frame: a street's grey, the two photos side by side, then as a camera sends it */
	memset(rgb, 0x60, sizeof(rgb));
	for (int i = 0; i < 2; i++) {   /* each 960 wide, its aspect kept, centred */
		const struct vg_image *im = i ? &b : &a;
		int h = (int)(960.0 * im->height / im->width);

		paste(rgb, im, 960 * i, (H - h) / 2, 960, h);
	}
	to_i420(rgb, yp, up, vp);
	for (int i = 0; i < W * H / 4; i++)
		nv12_uv[2 * i] = up[i], nv12_uv[2 * i + 1] = vp[i];
	host = (struct gpu_cuda_frame){.plane = {yp, up, vp}, .pitch = {W, W / 2, W / 2}, .format = GPU_CUDA_I420,
				       .width = W, .height = H};
	/* the NV12 frame on the device, as NVDEC leaves one */
	if (cudaMallocPitch(&dy, &py, W, H) != cudaSuccess || cudaMallocPitch(&duv, &puv, W, H / 2) != cudaSuccess ||
	    cudaMemcpy2D(dy, py, yp, W, W, H, cudaMemcpyHostToDevice) != cudaSuccess ||
	    cudaMemcpy2D(duv, puv, nv12_uv, W, W, H / 2, cudaMemcpyHostToDevice) != cudaSuccess)
		return fprintf(stderr, "bench_cuda_faces: cannot put the frame on the device\n"), 1;
	dev = (struct gpu_cuda_frame){.plane = {dy, duv}, .pitch = {(int)py, (int)puv}, .format = GPU_CUDA_NV12,
				      .width = W, .height = H, .on_device = 1};
	peak = gpu_cuda_peak_gflops(0);
	printf("%s, %d SMs: measured fp32 FMA peak %.0f GFLOP/s\n", info.name, info.multiprocessors, peak);

	cpu_fps = cpu_peer(m, yp, up, vp);
	if (bench_modes(m, &host, &dev, peak, cpu_fps) || bench_latency(m, &dev))
		return 1;
	cudaFree(dy);
	cudaFree(duv);
	vg_image_release(&a);
	vg_image_release(&b);
	gpu_model_close(&m);
	return 0;
}
