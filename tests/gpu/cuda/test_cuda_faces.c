/*
 * The whole face pipeline of gpu/cuda (gpu_cuda_faces_*) against the CPU pipeline (gpu.h).
 *   test_cuda_faces SOURCE_ROOT RECORDING.h264 DEVICE
 *   test_cuda_faces --has-device DEVICE      (exit 0 if there is such a GPU, 77 if not)
 *
 * DEVICE -1, the host emulation (no GPU needed; in CI): it runs the very functors and layer
 * sequences the device runs, so in the exact mode it must find, crop, align, describe and drop
 * exactly the faces the CPU pipeline (gpu_faces_run on the reference kernels) finds on the same
 * pixels, bit for bit:
 *   1. one batch of three photos of different sizes (RGB24): every face's box, score, landmarks,
 *      alignment, quality and descriptor equal, and the count of each frame.
 *   2. real camera frames: make demo's recording decoded by libavcodec and read in place, three
 *      frames as I420 and one as NV12 in one batch; the CPU sees the same frames converted by an
 *      independent BT.601 formula (the kernels' conversion, tests/gpu/cuda/test_cuda_pre.c).
 *   3. tiled detection (gpu_faces_run_tiled, overlap 192) on a 640 x 576 region of a camera frame,
 *      read in place through the planes' pitches.
 *   4. the descriptors gathered for the matcher equal the faces' own, and the evidence crop equals
 *      the converted pixels.
 *   5. after gpu_cuda_faces_retire() not one byte of the batch is left in its buffers (invariant 1).
 *   6. bad frames and arguments get -EINVAL, and the next batch is still right.
 *
 * DEVICE 0.., on a GPU (the gpu suite; 77 without one), each mode on the six demo photos and the
 * camera frames in one batch, against the CPU's fp32 (oneDNN) on the same pixels:
 *   - exact and fp32 (cuDNN): the same faces, boxes and landmarks within 0.5 px, descriptors within
 *     L2 1e-3 (the bar);
 *   - fp16: its drift from the GPU's fp32 printed, and no match decision at 0.6 changed over the
 *     photos' 231 pairs;
 *   - the same batch again replays the nets as CUDA graphs, with the same results to the bit;
 *   - the camera frames copied to the device and read there (as NVDEC's are) give the host frames'
 *     results to the bit;
 *   - after retire, nothing of the batch is left on the device.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <cuda_runtime.h>

#include "../../../gpu/gpu_int.h"
#include "gpu_cuda.h"
#include "vg_image.h"
#include "vg_test.h"

#define MAXF 16
#define NPHOTO 3
#define NCAM 3
#define CAM_W 1280
#define CAM_H 720

static const int cam_frames[NCAM] = {40, 95, 150};   /* frames of the recording with faces in them */

static int clamp255(int v)
{
	return v < 0 ? 0 : (v > 255 ? 255 : v);
}

/* BT.601 limited range, 8.8 fixed point, the chroma of the pixel's 2x2 block. */
static void i420_to_rgb(const uint8_t *const pl[3], const int pitch[3], int w, int h, uint8_t *rgb)
{
	for (int r = 0; r < h; r++)
		for (int c = 0; c < w; c++) {
			int C = pl[0][(size_t)r * pitch[0] + c] - 16;
			int D = pl[1][(size_t)(r / 2) * pitch[1] + c / 2] - 128;
			int E = pl[2][(size_t)(r / 2) * pitch[2] + c / 2] - 128;
			uint8_t *p = rgb + ((size_t)r * w + c) * 3;

			p[0] = (uint8_t)clamp255((298 * C + 409 * E + 128) >> 8);
			p[1] = (uint8_t)clamp255((298 * C - 100 * D - 208 * E + 128) >> 8);
			p[2] = (uint8_t)clamp255((298 * C + 516 * D + 128) >> 8);
		}
}

/* Frames WANT[] of the H.264 file PATH as I420 planes, packed, into Y/U/V. 0 or -1. */
static int decode_frames(const char *path, uint8_t *y[NCAM], uint8_t *u[NCAM], uint8_t *v[NCAM])
{
	const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_H264);
	AVCodecContext *ctx = codec ? avcodec_alloc_context3(codec) : NULL;
	AVPacket *pkt = av_packet_alloc();
	AVFrame *fr = av_frame_alloc();
	FILE *f = fopen(path, "rb");
	static uint8_t buf[1 << 21];
	size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
	int got = 0, index = 0, rc = -1;

	if (f)
		fclose(f);
	if (!ctx || !pkt || !fr || !len || avcodec_open2(ctx, codec, NULL) < 0)
		goto out;
	/* the Annex-B stream through the parser, a frame at a time, then the decoder's flush */
	{
		AVCodecParserContext *pc = av_parser_init(AV_CODEC_ID_H264);
		const uint8_t *data = buf;
		size_t left = len;

		while (pc && got < NCAM) {
			uint8_t *out = NULL;
			int out_len = 0, used = av_parser_parse2(pc, ctx, &out, &out_len, data, (int)left, AV_NOPTS_VALUE,
								 AV_NOPTS_VALUE, 0);
			int flush = left == 0 && out_len == 0;

			data += used;
			left -= (size_t)used;
			if (!out_len && !flush)
				continue;
			pkt->data = out;
			pkt->size = out_len;
			if (avcodec_send_packet(ctx, flush ? NULL : pkt) < 0)
				break;
			while (got < NCAM && avcodec_receive_frame(ctx, fr) == 0) {
				if (index++ == cam_frames[got] && fr->width == CAM_W && fr->height == CAM_H &&
				    fr->format == AV_PIX_FMT_YUV420P) {
					for (int r = 0; r < CAM_H; r++)
						memcpy(y[got] + (size_t)r * CAM_W, fr->data[0] + (size_t)r * fr->linesize[0], CAM_W);
					for (int r = 0; r < CAM_H / 2; r++) {
						memcpy(u[got] + (size_t)r * CAM_W / 2, fr->data[1] + (size_t)r * fr->linesize[1], CAM_W / 2);
						memcpy(v[got] + (size_t)r * CAM_W / 2, fr->data[2] + (size_t)r * fr->linesize[2], CAM_W / 2);
					}
					got++;
				}
				av_frame_unref(fr);
			}
			if (flush)
				break;
		}
		av_parser_close(pc);
	}
	rc = got == NCAM ? 0 : -1;
out:
	av_frame_free(&fr);
	av_packet_free(&pkt);
	avcodec_free_context(&ctx);
	return rc;
}

/* The device batch's faces against the CPU's, frame by frame: equal to the byte. */
static int same_faces(const char *what, const struct gpu_face *dev, const int *counts, int nframes,
		      struct gpu_face cpu[][MAXF], const int *ncpu)
{
	int k = 0, bad = 0, total = 0;

	for (int i = 0; i < nframes; i++) {
		if (counts[i] != ncpu[i]) {
			fprintf(stderr, "%s frame %d: %d faces on the device, %d on the CPU\n", what, i, counts[i], ncpu[i]);
			bad++;
			k += counts[i];
			continue;
		}
		for (int j = 0; j < ncpu[i]; j++, k++) {
			if (memcmp(&dev[k], &cpu[i][j], sizeof(struct gpu_face)) != 0) {
				fprintf(stderr, "%s frame %d face %d: box %.3f,%.3f vs %.3f,%.3f, descriptor[0] %g vs %g\n",
					what, i, j, dev[k].box[0], dev[k].box[1], cpu[i][j].box[0], cpu[i][j].box[1],
					dev[k].descriptor[0], cpu[i][j].descriptor[0]);
				bad++;
			}
		}
		total += ncpu[i];
	}
	printf("  %-34s %d frames, %d faces, %d differ\n", what, nframes, total, bad);
	return bad == 0;
}

/* ==== on a GPU ================================================================================= */

#define NGOLD 6   /* the demo photos: 22 faces */

/* DEV's faces against REF's, face by face in order: boxes and landmarks within PX, descriptors
 * within L2 (a NULL-descriptor side is not compared). Returns how many differ, printing the worst. */
static int near_faces(const char *what, const struct gpu_face *dev, const int *dcount, const struct gpu_face *ref,
		      const int *rcount, int nframes, double px, double l2)
{
	double wb = 0, wl = 0, wd = 0;
	int bad = 0, k = 0;

	for (int i = 0; i < nframes; i++) {
		if (dcount[i] != rcount[i]) {
			fprintf(stderr, "%s frame %d: %d faces, the reference %d\n", what, i, dcount[i], rcount[i]);
			return 1;
		}
		for (int j = 0; j < dcount[i]; j++, k++) {
			double b = 0, l = 0, d = gpu_descriptor_distance(dev[k].descriptor, ref[k].descriptor);

			for (int c = 0; c < 4; c++)
				b = fmax(b, fabs(dev[k].box[c] - ref[k].box[c]));
			for (int q = 0; q < GPU_LANDMARKS; q++)
				l = fmax(l, fmax(fabs(dev[k].landmarks[q][0] - ref[k].landmarks[q][0]),
						 fabs(dev[k].landmarks[q][1] - ref[k].landmarks[q][1])));
			bad += b > px || l > px || d > l2;
			wb = fmax(wb, b), wl = fmax(wl, l), wd = fmax(wd, d);
		}
	}
	printf("  %-40s %d faces: box %.2e px, landmarks %.2e px, descriptor L2 %.2e; %d beyond (%.1f px, %.0e)\n", what,
	       k, wb, wl, wd, bad, px, l2);
	return bad;
}

/* Host I420 frame F copied into device memory (DEV_PLANES, freed by the caller): as NVDEC leaves
 * a frame, read in place. */
static struct gpu_cuda_frame to_device(const struct gpu_cuda_frame *f, void *dev_planes[3])
{
	struct gpu_cuda_frame d = *f;

	for (int p = 0; p < 3; p++) {
		int w = p ? (f->width + 1) / 2 : f->width, h = p ? (f->height + 1) / 2 : f->height;
		size_t pitch = 0;

		dev_planes[p] = NULL;
		if (cudaMallocPitch(&dev_planes[p], &pitch, (size_t)w, (size_t)h) != cudaSuccess ||
		    cudaMemcpy2D(dev_planes[p], pitch, f->plane[p], (size_t)f->pitch[p], (size_t)w, (size_t)h,
				 cudaMemcpyHostToDevice) != cudaSuccess)
			continue;
		d.plane[p] = dev_planes[p];
		d.pitch[p] = (int)pitch;
	}
	d.on_device = 1;
	return d;
}

/*
 * The camera frames on the device, read in place: the host frames' results (OUT, N faces in all,
 * COUNTS per frame, the photos first); then each frame scrubbed and freed. AGAIN is scratch.
 */
static void device_frames(struct gpu_cuda_faces *p, int device, const struct gpu_cuda_frame *cam, int ncam,
			  const struct gpu_face *out, const int *counts, int n, struct gpu_face *again)
{
	void *planes[NCAM][3];
	struct gpu_cuda_frame d[NCAM];
	int first = 0, cd[NCAM];

	for (int i = 0; i < NGOLD; i++)
		first += counts[i];
	for (int i = 0; i < ncam; i++)
		d[i] = to_device(&cam[i], planes[i]);
	CHECK_EQ_INT(gpu_cuda_faces_run(p, d, ncam, GPU_CUDA_FACES_DESCRIPTORS, again, (NGOLD + NCAM) * MAXF, cd),
		     n - first);
	CHECK(memcmp(again, out + first, (size_t)(n - first) * sizeof(again[0])) == 0);
	CHECK_EQ_INT(gpu_cuda_faces_retire(p), 0);
	for (int i = 0; i < ncam; i++) {
		/* a device frame is zeroed before its decoder gets it back */
		CHECK_EQ_INT(gpu_cuda_frame_scrub(device, &d[i]), 0);
		{
			uint8_t row[CAM_W];

			cudaMemcpy(row, d[i].plane[0], CAM_W, cudaMemcpyDeviceToHost);
			for (int x = 0; x < CAM_W; x++)
				CHECK(row[x] == 0);
		}
		for (int q = 0; q < 3; q++)
			cudaFree(planes[i][q]);
	}
}

/*
 * fp16 (O16, C16 faces per frame): its drift from the GPU's fp32 (O32, C32), and the photos' match
 * decisions at 0.6.
 */
static void fp16_decisions(const struct gpu_face *o32, const int *c32, const struct gpu_face *o16, const int *c16)
{
	int k32 = 0, faces = 0, pairs = 0, changed = 0;
	double drift = 0, closest = 1;

	for (int i = 0; i < NGOLD; i++) {
		CHECK_EQ_INT(c16[i], c32[i]);
		k32 += c32[i];
	}
	faces = k32;
	for (int a = 0; a < faces; a++) {
		drift = fmax(drift, gpu_descriptor_distance(o16[a].descriptor, o32[a].descriptor));
		for (int b = a + 1; b < faces; b++) {
			double d32 = gpu_descriptor_distance(o32[a].descriptor, o32[b].descriptor);
			double d16 = gpu_descriptor_distance(o16[a].descriptor, o16[b].descriptor);

			pairs++;
			changed += (d32 < GPU_MATCH_THRESHOLD) != (d16 < GPU_MATCH_THRESHOLD);
			closest = fmin(closest, fabs(d32 - GPU_MATCH_THRESHOLD));
		}
	}
	printf("  fp16: descriptors drift up to L2 %.2e from fp32 over %d photo faces; %d of %d decisions at 0.6"
	       " changed (the closest pair is %.4f from it)\n", drift, faces, changed, pairs, closest);
	CHECK_EQ_INT(changed, 0);
}

static int gpu_checks(struct gpu_model *m, int device, const char *root, const struct gpu_cuda_frame *cam, int ncam)
{
	static struct vg_image ph[NGOLD];
	static struct gpu_face ref[NGOLD + NCAM][MAXF], out[3][(NGOLD + NCAM) * MAXF], again[(NGOLD + NCAM) * MAXF];
	static uint8_t *cam_rgb[NCAM];
	struct gpu_cuda_frame fr[NGOLD + NCAM];
	int nref[NGOLD + NCAM], counts[3][NGOLD + NCAM], c2[NGOLD + NCAM], nf = NGOLD + ncam, n[3];
	char path[1024], err[512];
	static const char *const names[] = {"exact", "fp32 (cuDNN)", "fp16 (cuDNN)"};

	if (gpu_cuda_device_count() <= device) {
		printf("test_cuda_faces: no CUDA device %d: skipped\n", device);
		return VG_TEST_SKIP;
	}
	for (int i = 0; i < NGOLD; i++) {
		snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample%d.jpg", root, i + 1);
		if (vg_image_load(path, &ph[i], err, sizeof(err))) {
			fprintf(stderr, "test_cuda_faces: %s\n", err);
			return 1;
		}
		fr[i] = (struct gpu_cuda_frame){.plane = {ph[i].rgb}, .pitch = {(int)ph[i].width * 3}, .format = GPU_CUDA_RGB24,
						.width = (int)ph[i].width, .height = (int)ph[i].height};
	}
	/* the reference: the CPU backend's fp32 (oneDNN) on the same pixels */
	CHECK_EQ_INT(gpu_model_set_backend(m, GPU_BACKEND_ONEDNN), 0);
	for (int i = 0; i < nf; i++) {
		const uint8_t *rgb = i < NGOLD ? ph[i].rgb : NULL;

		if (i >= NGOLD) {
			const struct gpu_cuda_frame *c = &cam[i - NGOLD];

			cam_rgb[i - NGOLD] = malloc((size_t)c->width * c->height * 3);
			if (!cam_rgb[i - NGOLD])
				return 1;
			i420_to_rgb(c->plane, c->pitch, c->width, c->height, cam_rgb[i - NGOLD]);
			rgb = cam_rgb[i - NGOLD];
			fr[i] = *c;
		}
		nref[i] = gpu_faces_run(m, rgb, (uint32_t)fr[i].width, (uint32_t)fr[i].height, ref[i], MAXF);
	}
	printf("on %s device %d, against the CPU's fp32 (oneDNN) on the same pixels:\n", "CUDA", device);
	for (int mode = GPU_CUDA_EXACT; mode <= GPU_CUDA_FP16; mode++) {
		struct gpu_cuda_faces_conf conf = {.device = device, .mode = mode, .max_frames = NGOLD + NCAM,
						   .max_width = 1920, .max_height = 1600, .max_faces = MAXF, .graphs = 1};
		struct gpu_cuda_faces *p = NULL;
		struct gpu_cuda_faces_stats st;
		struct gpu_face flat[(NGOLD + NCAM) * MAXF];
		int k = 0;

		CHECK_EQ_INT(gpu_cuda_faces_create(&p, m, &conf, err, sizeof(err)), 0);
		if (!p) {
			fprintf(stderr, "test_cuda_faces: %s: %s\n", names[mode], err);
			continue;
		}
		n[mode] = gpu_cuda_faces_run(p, fr, nf, GPU_CUDA_FACES_DESCRIPTORS, out[mode], (NGOLD + NCAM) * MAXF, counts[mode]);
		CHECK(n[mode] > 0);
		for (int i = 0; i < nf; i++)
			for (int j = 0; j < nref[i]; j++)
				flat[k++] = ref[i][j];
		if (mode != GPU_CUDA_FP16)
			CHECK(near_faces(names[mode], out[mode], counts[mode], flat, nref, nf, 0.5, 1e-3) == 0);
		/* the same batch again: its passes replay as graphs, with the same results to the bit */
		CHECK_EQ_INT(gpu_cuda_faces_run(p, fr, nf, GPU_CUDA_FACES_DESCRIPTORS, again, (NGOLD + NCAM) * MAXF, c2), n[mode]);
		CHECK(memcmp(again, out[mode], (size_t)n[mode] * sizeof(again[0])) == 0);
		gpu_cuda_faces_stats_get(p, &st);
		printf("  %-40s graphs replayed %llu, capture failures %llu, cuDNN refusals %d, %.0f MiB\n", names[mode],
		       (unsigned long long)st.graph_launches, (unsigned long long)st.graph_failures, st.cudnn_fallbacks,
		       st.device_bytes / 1048576.0);
		CHECK(st.graph_launches > 0);
		CHECK_EQ_INT(st.graph_failures, 0);
		device_frames(p, device, cam, ncam, out[mode], counts[mode], n[mode], again);
		CHECK_EQ_INT(gpu_cuda_faces_residue(p), 0);
		gpu_cuda_faces_destroy(&p);
	}
	/* fp16: its drift from the GPU's fp32, and the photos' match decisions at 0.6 */
	if (n[GPU_CUDA_FP32] > 0 && n[GPU_CUDA_FP16] > 0)
		fp16_decisions(out[GPU_CUDA_FP32], counts[GPU_CUDA_FP32], out[GPU_CUDA_FP16], counts[GPU_CUDA_FP16]);
	for (int i = 0; i < NGOLD; i++)
		vg_image_release(&ph[i]);
	for (int i = 0; i < ncam; i++)
		free(cam_rgb[i]);
	return vg_test_exit();
}

/* What host_checks' steps share: the CPU's faces per frame, the pipeline's, the batch's frames. */
struct host_state {
	struct gpu_model *m;
	struct gpu_cuda_faces *p;
	struct gpu_face cpu[NCAM + 1][MAXF], dev[(NCAM + 1) * MAXF];
	struct gpu_cuda_frame fr[NCAM + 1];
	int ncpu[NCAM + 1], counts[NCAM + 1];
};

/* Bad configurations: one line, nothing made. */
static void host_bad_confs(struct gpu_model *m, const struct gpu_cuda_faces_conf *conf)
{
	struct gpu_cuda_faces *p = NULL;
	char err[512];
	struct gpu_cuda_faces_conf bad = *conf;

	bad.max_faces = GPU_MAX_FACES + 1;
	CHECK_EQ_INT(gpu_cuda_faces_create(&p, m, &bad, err, sizeof(err)), -EINVAL);
	bad = *conf;
	bad.device = 99;
	CHECK_EQ_INT(gpu_cuda_faces_create(&p, m, &bad, err, sizeof(err)), -ENODEV);
	CHECK(p == NULL);
}

/* 1, 4 and 5: three photos in one batch, their descriptors as the matcher's queries, retired. */
static void host_photos(struct host_state *s, const struct vg_image *photo)
{
	int n;

	/* 1. three photos in one batch */
	for (int i = 0; i < NPHOTO; i++) {
		s->ncpu[i] = gpu_faces_run(s->m, photo[i].rgb, photo[i].width, photo[i].height, s->cpu[i], MAXF);
		s->fr[i] = (struct gpu_cuda_frame){.plane = {photo[i].rgb}, .pitch = {(int)photo[i].width * 3},
						.format = GPU_CUDA_RGB24, .width = (int)photo[i].width,
						.height = (int)photo[i].height};
	}
	n = gpu_cuda_faces_run(s->p, s->fr, NPHOTO, GPU_CUDA_FACES_DESCRIPTORS, s->dev, (int)(sizeof(s->dev) / sizeof(s->dev[0])), s->counts);
	CHECK_EQ_INT(n, s->ncpu[0] + s->ncpu[1] + s->ncpu[2]);
	CHECK(n >= 3);
	CHECK(same_faces("photos sample1-3 (RGB24)", s->dev, s->counts, NPHOTO, s->cpu, s->ncpu));
	/* 4. the matcher's queries: the faces' own descriptors, in the order asked */
	{
		int idx[2] = {n - 1, 0};
		const float *q = gpu_cuda_faces_queries(s->p, idx, 2);

		CHECK(q != NULL);
		CHECK(q && memcmp(q, s->dev[n - 1].descriptor, GPU_DESCRIPTOR_DIM * sizeof(float)) == 0 &&
		      memcmp(q + GPU_DESCRIPTOR_DIM, s->dev[0].descriptor, GPU_DESCRIPTOR_DIM * sizeof(float)) == 0);
		float host[2 * GPU_DESCRIPTOR_DIM];

		CHECK_EQ_INT(gpu_cuda_faces_descriptors(s->p, idx, 2, host), 0);
		CHECK(memcmp(host, s->dev[n - 1].descriptor, GPU_DESCRIPTOR_DIM * sizeof(float)) == 0 &&
		      memcmp(host + GPU_DESCRIPTOR_DIM, s->dev[0].descriptor, GPU_DESCRIPTOR_DIM * sizeof(float)) == 0);
		idx[0] = n;
		CHECK(gpu_cuda_faces_queries(s->p, idx, 1) == NULL);   /* no such face */
		CHECK_EQ_INT(gpu_cuda_faces_descriptors(s->p, idx, 1, host), -EINVAL);
	}
	/* 5. the batch retires: nothing of it is left */
	CHECK(gpu_cuda_faces_residue(s->p) > 0);
	CHECK_EQ_INT(gpu_cuda_faces_retire(s->p), 0);
	CHECK_EQ_INT(gpu_cuda_faces_residue(s->p), 0);
	CHECK(gpu_cuda_faces_queries(s->p, (int[]){0}, 1) == NULL);
}

/* 2 and 4: the camera frames in place (three I420, the first again as NV12), an evidence crop. */
static void host_camera(struct host_state *s, uint8_t **y, uint8_t **u, uint8_t **v, uint8_t **rgb)
{
	static uint8_t nv12_uv[CAM_W * CAM_H / 2], crop_rgb[64 * 64 * 3];
	int n, total;

	for (int i = 0; i < NCAM; i++) {
		const uint8_t *pl[3] = {y[i], u[i], v[i]};
		int pitch[3] = {CAM_W, CAM_W / 2, CAM_W / 2};

		i420_to_rgb(pl, pitch, CAM_W, CAM_H, rgb[i]);
		s->ncpu[i] = gpu_faces_run(s->m, rgb[i], CAM_W, CAM_H, s->cpu[i], MAXF);
		s->fr[i] = (struct gpu_cuda_frame){.plane = {y[i], u[i], v[i]}, .pitch = {CAM_W, CAM_W / 2, CAM_W / 2},
						.format = GPU_CUDA_I420, .width = CAM_W, .height = CAM_H};
	}
	for (int i = 0; i < CAM_W * CAM_H / 4; i++) {
		nv12_uv[2 * i] = u[0][i];
		nv12_uv[2 * i + 1] = v[0][i];
	}
	s->fr[NCAM] = (struct gpu_cuda_frame){.plane = {y[0], nv12_uv}, .pitch = {CAM_W, CAM_W}, .format = GPU_CUDA_NV12,
					   .width = CAM_W, .height = CAM_H};
	memcpy(s->cpu[NCAM], s->cpu[0], sizeof(s->cpu[0]));
	s->ncpu[NCAM] = s->ncpu[0];
	total = 0;
	for (int i = 0; i <= NCAM; i++)
		total += s->ncpu[i];
	n = gpu_cuda_faces_run(s->p, s->fr, NCAM + 1, GPU_CUDA_FACES_DESCRIPTORS, s->dev, (int)(sizeof(s->dev) / sizeof(s->dev[0])), s->counts);
	CHECK(n == total && total >= 4);
	CHECK(same_faces("camera frames (3 I420, 1 NV12)", s->dev, s->counts, NCAM + 1, s->cpu, s->ncpu));
	/* 4. the evidence crop: the converted pixels, sampled as vigild's crop_face does */
	{
		int bad = 0;

		CHECK_EQ_INT(gpu_cuda_faces_crop(s->p, 1, 301, 201, 64, 64, 1.5, crop_rgb), 0);
		for (int yy = 0; yy < 64; yy++)
			for (int xx = 0; xx < 64; xx++)
				bad += memcmp(crop_rgb + ((size_t)yy * 64 + xx) * 3,
					      rgb[1] + ((size_t)(201 + (int)(yy * 1.5)) * CAM_W + 301 + (int)(xx * 1.5)) * 3, 3) != 0;
		CHECK_EQ_INT(bad, 0);
		CHECK_EQ_INT(gpu_cuda_faces_crop(s->p, 1, CAM_W - 10, 0, 64, 64, 1.0, crop_rgb), -EINVAL);   /* outside */
		CHECK_EQ_INT(gpu_cuda_faces_crop(s->p, NCAM + 1, 0, 0, 8, 8, 1.0, crop_rgb), -EINVAL);     /* no frame */
	}
	CHECK_EQ_INT(gpu_cuda_faces_retire(s->p), 0);
	CHECK_EQ_INT(gpu_cuda_faces_residue(s->p), 0);
}

/* 6. bad frames: refused whole, and the pipeline still right after (host_camera's frames). */
static void host_bad_frames(struct host_state *s)
{
	struct gpu_cuda_frame bad = s->fr[0];
	int n;


	bad.width = 2000;   /* larger than max_width */
	bad.pitch[0] = 2000;
	CHECK_EQ_INT(gpu_cuda_faces_run(s->p, &bad, 1, 0, s->dev, MAXF, s->counts), -EINVAL);
	bad = s->fr[0];
	bad.format = 7;
	CHECK_EQ_INT(gpu_cuda_faces_run(s->p, &bad, 1, 0, s->dev, MAXF, s->counts), -EINVAL);
	bad = s->fr[0];
	bad.on_device = 1;   /* the emulation reads host memory only */
	CHECK_EQ_INT(gpu_cuda_faces_run(s->p, &bad, 1, 0, s->dev, MAXF, s->counts), -EINVAL);
	bad = s->fr[0];
	bad.pitch[1] = 10;   /* shorter than a chroma row */
	CHECK_EQ_INT(gpu_cuda_faces_run(s->p, &bad, 1, 0, s->dev, MAXF, s->counts), -EINVAL);
	CHECK_EQ_INT(gpu_cuda_faces_run(s->p, s->fr, NCAM + 2, 0, s->dev, MAXF, s->counts), -EINVAL);   /* too many */
	n = gpu_cuda_faces_run(s->p, &s->fr[2], 1, 0, s->dev, MAXF, s->counts);
	CHECK_EQ_INT(n, s->ncpu[2]);
	/* without the flag the descriptors stay behind */
	for (int k = 0; k < n; k++) {
		struct gpu_face want = s->cpu[2][k];

		memset(want.descriptor, 0, sizeof(want.descriptor));
		CHECK(memcmp(&s->dev[k], &want, sizeof(want)) == 0);
	}
	CHECK_EQ_INT(gpu_cuda_faces_retire(s->p), 0);
}

/* 3. tiled: a 640 x 576 region of the second camera frame, in place through its pitches. */
static void host_tiled(struct host_state *s, struct gpu_cuda_faces_conf conf, uint8_t **y, uint8_t **u, uint8_t **v,
		       uint8_t **rgb)
{
	struct gpu_cuda_faces *tiled = NULL;
	char err[512];
	int n;

	conf.tiled = 1;
	conf.overlap = 192;
	conf.max_frames = 1;
	CHECK_EQ_INT(gpu_cuda_faces_create(&tiled, s->m, &conf, err, sizeof(err)), 0);
	if (tiled) {
		const int x0 = 320, y0 = 72, w = 640, h = 576;
		static uint8_t region[640 * 576 * 3];
		struct gpu_cuda_frame t = {.plane = {y[1] + (size_t)y0 * CAM_W + x0, u[1] + (size_t)(y0 / 2) * (CAM_W / 2) + x0 / 2,
						     v[1] + (size_t)(y0 / 2) * (CAM_W / 2) + x0 / 2},
					   .pitch = {CAM_W, CAM_W / 2, CAM_W / 2}, .format = GPU_CUDA_I420, .width = w,
					   .height = h};

		for (int r = 0; r < h; r++)
			memcpy(region + (size_t)r * w * 3, rgb[1] + ((size_t)(y0 + r) * CAM_W + x0) * 3, (size_t)w * 3);
		s->ncpu[0] = gpu_faces_run_tiled(s->m, region, w, h, 192, s->cpu[0], MAXF);
		n = gpu_cuda_faces_run(tiled, &t, 1, GPU_CUDA_FACES_DESCRIPTORS, s->dev, MAXF, s->counts);
		CHECK(n == s->ncpu[0] && n >= 1);
		CHECK(same_faces("tiled 640x576 region (5 SSD inputs)", s->dev, s->counts, 1, s->cpu, s->ncpu));
		{
			struct gpu_cuda_faces_stats st;

			gpu_cuda_faces_stats_get(tiled, &st);
			CHECK_EQ_INT(st.detector_inputs, 5);
			CHECK_EQ_INT(st.faces, (uint64_t)n);
		}
		CHECK_EQ_INT(gpu_cuda_faces_retire(tiled), 0);
		CHECK_EQ_INT(gpu_cuda_faces_residue(tiled), 0);
	}
	gpu_cuda_faces_destroy(&tiled);
}

/* The host emulation's checks (1-6 above), on the photos and camera frames main() loaded. */
static int host_checks(struct gpu_model *m, struct vg_image *photo, uint8_t **y, uint8_t **u, uint8_t **v,
		       uint8_t **rgb)
{
	static struct host_state s;
	struct gpu_cuda_faces_conf conf = {.device = -1, .mode = GPU_CUDA_EXACT, .max_frames = NCAM + 1,
					   .max_width = 1920, .max_height = 1400, .max_faces = MAXF};
	char err[512];

	s.m = m;
	CHECK_EQ_INT(gpu_model_set_backend(m, GPU_BACKEND_REFERENCE), 0);
	host_bad_confs(m, &conf);
	CHECK_EQ_INT(gpu_cuda_faces_create(&s.p, m, &conf, err, sizeof(err)), 0);
	if (!s.p) {
		fprintf(stderr, "test_cuda_faces: %s\n", err);
		return 1;
	}
	printf("exact mode, host emulation, against gpu_faces_run on the reference kernels:\n");
	host_photos(&s, photo);
	host_camera(&s, y, u, v, rgb);
	host_bad_frames(&s);
	host_tiled(&s, conf, y, u, v, rgb);
	{
		struct gpu_cuda_faces_stats st;

		gpu_cuda_faces_stats_get(s.p, &st);
		printf("  batches %llu, frames %llu, detector inputs %llu, faces %llu, emulation memory %.0f MiB\n",
		       (unsigned long long)st.batches, (unsigned long long)st.frames,
		       (unsigned long long)st.detector_inputs, (unsigned long long)st.faces, st.device_bytes / 1048576.0);
		CHECK_EQ_INT(st.batches, 3);
	}

	gpu_cuda_faces_destroy(&s.p);
	CHECK(s.p == NULL);
	gpu_cuda_faces_destroy(&s.p);   /* safe on NULL */
	return vg_test_exit();
}

int main(int argc, char **argv)
{
	static struct vg_image photo[NPHOTO];
	static uint8_t *y[NCAM], *u[NCAM], *v[NCAM], *rgb[NCAM];
	struct gpu_model *m = NULL;
	char path[1024], err[512];
	int rc;
	const char *req = getenv("VIGIL_REQUIRE_FETCHED");
	int skip_rc = req && strcmp(req, "1") == 0 ? 1 : VG_TEST_SKIP;

	int device = argc > 3 ? atoi(argv[3]) : -1;

	if (argc == 3 && strcmp(argv[1], "--has-device") == 0)   /* cuda_faces.sh: is there a GPU N? */
		return gpu_cuda_device_count() > atoi(argv[2]) ? 0 : VG_TEST_SKIP;
	if (argc < 3)
		return 2;
	if (device >= 0 && gpu_cuda_device_count() <= device) {
		printf("test_cuda_faces: no CUDA device %d: skipped\n", device);
		return VG_TEST_SKIP;
	}
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/model", argv[1]);
	if (gpu_model_open(&m, path, err, sizeof(err))) {
		fprintf(stderr, "test_cuda_faces: %s\n", err);
		return skip_rc;
	}
	for (int i = 0; i < NPHOTO; i++) {
		snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample%d.jpg", argv[1], i + 1);
		if (vg_image_load(path, &photo[i], err, sizeof(err))) {
			fprintf(stderr, "test_cuda_faces: %s\n", err);
			return skip_rc;
		}
	}
	for (int i = 0; i < NCAM; i++) {
		y[i] = malloc(CAM_W * CAM_H);
		u[i] = malloc(CAM_W * CAM_H / 4);
		v[i] = malloc(CAM_W * CAM_H / 4);
		rgb[i] = malloc(CAM_W * CAM_H * 3);
		if (!y[i] || !u[i] || !v[i] || !rgb[i])
			return 1;
	}
	if (decode_frames(argv[2], y, u, v)) {
		fprintf(stderr, "test_cuda_faces: cannot decode frames of %s\n", argv[2]);
		return skip_rc;
	}
	if (device >= 0) {
		struct gpu_cuda_frame cam[NCAM];

		for (int i = 0; i < NCAM; i++)
			cam[i] = (struct gpu_cuda_frame){.plane = {y[i], u[i], v[i]}, .pitch = {CAM_W, CAM_W / 2, CAM_W / 2},
							 .format = GPU_CUDA_I420, .width = CAM_W, .height = CAM_H};
		rc = gpu_checks(m, device, argv[1], cam, NCAM);
	} else {
		rc = host_checks(m, photo, y, u, v, rgb);
	}
	for (int i = 0; i < NCAM; i++) {
		free(y[i]);
		free(u[i]);
		free(v[i]);
		free(rgb[i]);
	}
	for (int i = 0; i < NPHOTO; i++)
		vg_image_release(&photo[i]);
	gpu_model_close(&m);
	return rc;
}
