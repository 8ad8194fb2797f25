/*
 * The CUDA nets' layer sequences and element kernels, checked on the host (no GPU needed): the
 * host emulation (gpu_cuda_nets_create with device -1) runs the very kernels the device runs, in a
 * loop, so what it computes is what the CUDA backend's exact mode computes, up to the device's
 * expf.
 *   1. Each net, pass by pass, against gpu/'s reference kernels on face-api's sample1.jpg: the
 *      exact mode equals them bit for bit (SSD boxes and scores, 136 landmark outputs, 128-d
 *      descriptors of the three faces).
 *   2. The whole pipeline with the three passes attached (gpu_cuda_nets_attach): the same faces,
 *      boxes, landmarks and descriptors as the CPU, bit for bit, and no pass fell back.
 *   3. The fp16 mode's storage (activations rounded to fp16, fp32 accumulation, as cuDNN's
 *      pseudo-half configuration) on the descriptor net, over sample1-3's 9 faces: the drift
 *      from fp32 is printed and no match decision at 0.6 between the 36 pairs changes.
 *   test_cuda_nets_host SOURCE_ROOT
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../gpu/gpu_int.h"
#include "gpu_cuda.h"
#include "vg_image.h"
#include "vg_test.h"

#define NIMG 3
#define MAXF 16

static int same_floats(const char *what, const float *a, const float *b, size_t n)
{
	size_t bad = 0;
	double maxd = 0;

	for (size_t i = 0; i < n; i++) {
		if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
			double d = fabs((double)a[i] - b[i]);

			bad++;
			maxd = d > maxd ? d : maxd;
		}
	}
	printf("  %-22s %zu values, %zu differ (largest %.3g)\n", what, n, bad, maxd);
	return bad == 0;
}

/* 1. pass by pass, on IM (sample1) whose faces the reference pipeline found (F). */
static void pass_by_pass(struct gpu_model *m, struct gpu_cuda_nets *nets, const struct vg_image *im,
			 const struct gpu_face *f)
{
	static float in512[512 * 512 * 3], boxes_ref[GPU_SSD_ANCHORS * 4], scores_ref[GPU_SSD_ANCHORS];
	static float boxes_emu[GPU_SSD_ANCHORS * 4], scores_emu[GPU_SSD_ANCHORS];
	static float in112[112 * 112 * 3], in150[3 * 150 * 150 * 3];
	float lm_ref[136], lm_emu[136], d_ref[3 * 128], d_emu[3 * 128];

	CHECK_EQ_INT(gpu_cuda_nets_rec(nets, in150, 4, d_emu), -EINVAL);   /* over its batch */
	printf("exact mode, pass by pass, sample1.jpg:\n");
	gpu_to_batch_ref(im->rgb, (int)im->width, (int)im->height, (size_t)im->width * 3, 512, 0, in512);
	gpu_ssd_forward((struct gpu_ssd *)gpu_model_ssd(m), NULL, in512, boxes_ref, scores_ref);
	CHECK_EQ_INT(gpu_cuda_nets_ssd(nets, in512, 1, boxes_emu, scores_emu), 0);
	CHECK(same_floats("ssd boxes", boxes_ref, boxes_emu, GPU_SSD_ANCHORS * 4));
	CHECK(same_floats("ssd scores", scores_ref, scores_emu, GPU_SSD_ANCHORS));

	/* the landmark net on the first face's box, the descriptor net on the three aligned
	 * crops in one batch */
	{
		int x = (int)floor(f[0].box[0]), y = (int)floor(f[0].box[1]);
		int w = (int)floor(f[0].box[2]), h = (int)floor(f[0].box[3]);

		gpu_to_batch_ref(im->rgb + ((size_t)y * im->width + x) * 3, w, h, (size_t)im->width * 3, 112, 1,
				 in112);
	}
	gpu_lm_forward((struct gpu_lm *)gpu_model_lm(m), NULL, in112, lm_ref);
	CHECK_EQ_INT(gpu_cuda_nets_lm(nets, in112, 1, lm_emu), 0);
	CHECK(same_floats("landmark outputs", lm_ref, lm_emu, 136));
	for (int k = 0; k < 3; k++) {
		int x = (int)f[k].align[0], y = (int)f[k].align[1];
		int w = (int)f[k].align[2], h = (int)f[k].align[3];

		if (x + w > (int)im->width)
			w = (int)im->width - x;
		if (y + h > (int)im->height)
			h = (int)im->height - y;
		gpu_to_batch_ref(im->rgb + ((size_t)y * im->width + x) * 3, w, h, (size_t)im->width * 3, 150, 1,
				 in150 + (size_t)k * 150 * 150 * 3);
	}
	gpu_rec_forward((struct gpu_rec *)gpu_model_rec(m), NULL, in150, 3, d_ref);
	CHECK_EQ_INT(gpu_cuda_nets_rec(nets, in150, 3, d_emu), 0);
	CHECK(same_floats("descriptors (batch 3)", d_ref, d_emu, 3 * 128));
}

/* 2. the whole pipeline on the emulated passes, on sample1 (IM): the CPU's faces (CPU, NCPU). */
static void whole_pipeline(struct gpu_model *m, struct gpu_cuda_nets *nets, const struct vg_image *im,
			   const struct gpu_face *cpu, int ncpu, struct gpu_face *emu)
{
	int n, same;

	printf("exact mode, gpu_faces_run with the passes attached, sample1.jpg:\n");
	gpu_cuda_nets_attach(nets, m, GPU_CUDA_PASS_ALL);
	n = gpu_faces_run(m, im->rgb, im->width, im->height, emu, MAXF);
	same = n == ncpu;
	for (int k = 0; same && k < n; k++)
		same = memcmp(&cpu[k], &emu[k], sizeof(struct gpu_face)) == 0;
	printf("  %d faces (CPU %d), %s\n", n, ncpu, same ? "identical to the CPU's" : "DIFFERENT");
	CHECK(same);
	CHECK_EQ_INT((int)gpu_model_offload_failures(m), 0);
	gpu_cuda_nets_attach(NULL, m, 0);
}

/*
 * 3. fp16 storage on the descriptor net, over the IMGS whose faces the reference pipeline found
 * (CPU, NCPU per image); EMU is scratch for the emulated pipeline's.
 */
static void fp16_storage(struct gpu_model *m, const struct vg_image *imgs, struct gpu_face (*cpu)[MAXF],
			 const int *ncpu, struct gpu_face (*emu)[MAXF])
{
	struct gpu_cuda_nets *half = NULL;
	char err[512];

	CHECK_EQ_INT(gpu_cuda_nets_create(&half, m, -1, GPU_CUDA_FP16, GPU_REC_BATCH, err, sizeof(err)), 0);
	if (half) {
		int nf = 0, changed = 0;
		double maxd = 0, margin = 9;
		const float *all_cpu[NIMG * MAXF], *all_half[NIMG * MAXF];

		printf("fp16 storage (emulated), the descriptor net, sample1-%d:\n", NIMG);
		gpu_cuda_nets_attach(half, m, GPU_CUDA_PASS_REC);
		for (int i = 0; i < NIMG; i++) {
			int n = gpu_faces_run(m, imgs[i].rgb, imgs[i].width, imgs[i].height, emu[i], MAXF);

			CHECK_EQ_INT(n, ncpu[i]);
			for (int k = 0; k < n && n == ncpu[i]; k++) {
				double d = gpu_descriptor_distance(cpu[i][k].descriptor, emu[i][k].descriptor);

				maxd = d > maxd ? d : maxd;
				all_cpu[nf] = cpu[i][k].descriptor;
				all_half[nf++] = emu[i][k].descriptor;
			}
		}
		gpu_cuda_nets_attach(NULL, m, 0);
		for (int a = 0; a < nf; a++) {
			for (int b = a + 1; b < nf; b++) {
				double d32 = gpu_descriptor_distance(all_cpu[a], all_cpu[b]);
				double d16 = gpu_descriptor_distance(all_half[a], all_half[b]);
				double mg = fabs(d32 - GPU_MATCH_THRESHOLD);

				changed += (d32 < GPU_MATCH_THRESHOLD) != (d16 < GPU_MATCH_THRESHOLD);
				margin = mg < margin ? mg : margin;
			}
		}
		printf("  %d faces: largest descriptor drift from fp32 L2 %.2e; %d of %d decisions at %.1f changed "
		       "(closest fp32 pair to the threshold: %.3f away)\n",
		       nf, maxd, changed, nf * (nf - 1) / 2, GPU_MATCH_THRESHOLD, margin);
		CHECK(nf >= 9);
		CHECK(maxd < 0.05);
		CHECK_EQ_INT(changed, 0);
	}
	gpu_cuda_nets_destroy(&half);
}

int main(int argc, char **argv)
{
	static struct vg_image imgs[NIMG];
	static struct gpu_face cpu[NIMG][MAXF], emu[NIMG][MAXF];
	int ncpu[NIMG];
	struct gpu_model *m = NULL;
	struct gpu_cuda_nets *nets = NULL;
	char path[1024], err[512];
	const char *req = getenv("VIGIL_REQUIRE_FETCHED");
	int skip_rc = req && strcmp(req, "1") == 0 ? 1 : VG_TEST_SKIP;

	if (argc < 2)
		return 2;
	snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/model", argv[1]);
	if (gpu_model_open(&m, path, err, sizeof(err))) {
		fprintf(stderr, "test_cuda_nets_host: %s\n", err);
		return skip_rc;
	}
	for (int i = 0; i < NIMG; i++) {
		snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample%d.jpg", argv[1], i + 1);
		if (vg_image_load(path, &imgs[i], err, sizeof(err))) {
			fprintf(stderr, "test_cuda_nets_host: %s\n", err);
			gpu_model_close(&m);
			return skip_rc;
		}
	}
	CHECK_EQ_INT(gpu_model_set_backend(m, GPU_BACKEND_REFERENCE), 0);
	for (int i = 0; i < NIMG; i++) {
		ncpu[i] = gpu_faces_run(m, imgs[i].rgb, imgs[i].width, imgs[i].height, cpu[i], MAXF);
		CHECK(ncpu[i] >= 1);
	}

	/* bad arguments get a one-line error, not a crash */
	CHECK_EQ_INT(gpu_cuda_nets_create(&nets, m, -1, 7, 4, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(gpu_cuda_nets_create(&nets, m, -1, GPU_CUDA_EXACT, 0, err, sizeof(err)), -EINVAL);
	CHECK(nets == NULL);

	CHECK_EQ_INT(gpu_cuda_nets_create(&nets, m, -1, GPU_CUDA_EXACT, 3, err, sizeof(err)), 0);
	if (!nets) {
		fprintf(stderr, "test_cuda_nets_host: %s\n", err);
		return 1;
	}
	pass_by_pass(m, nets, &imgs[0], cpu[0]);
	whole_pipeline(m, nets, &imgs[0], cpu[0], ncpu[0], emu[0]);
	fp16_storage(m, imgs, cpu, ncpu, emu);
	gpu_cuda_nets_destroy(&nets);
	CHECK(nets == NULL);
	for (int i = 0; i < NIMG; i++) {
		gpu_faces_retire(cpu[i], MAXF);
		gpu_faces_retire(emu[i], MAXF);
		vg_image_release(&imgs[i]);
	}
	gpu_model_close(&m);
	return vg_test_exit();
}
