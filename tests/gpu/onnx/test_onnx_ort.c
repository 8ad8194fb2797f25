/*
 * Proof 2 of the ONNX importer (issue 17): an independent model, faceplugin's MobileFaceNet
 * (npm faceplugin-face-recognition-js@0.0.1, model/fr_feature.onnx, 112x112 -> 512), imported
 * and run by Vigil, gives onnxruntime-web's outputs (wasm backend, in node: oracle/run.js) within
 * 1e-4 (max abs per element) on the same input tensors:
 *   - the aligned crops of the faces in face-api's six demo photos, as the pipeline makes them:
 *     Vigil's descriptors straight from gpu_faces_run with the model folder, on oneDNN and on the
 *     reference kernels;
 *   - AT&T face images (when a folder of them is given), resampled to 112 as crops are;
 *   - random tensors, through the imported net alone on both backends.
 * and, with --synthetic=DIR, the importer's own small models of every operator it runs.
 *   test_onnx_ort MODEL_DIR ORACLE_JS OUT_DIR SOURCE_ROOT [ATT_DIR] [--synthetic=DIR]
 *   (test_onnx_ort.sh sets it up)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gpu.h"
#include "gpu_int.h"
#include "gpu_post.h"
#include "onnx/gpu_onnx.h"
#include "vg_base.h"
#include "vg_file.h"
#include "vg_image.h"
#include "vg_test.h"

#define SIDE 112
#define PER (SIDE * SIDE * 3)
#define DIM 512
#define MAXIN 64
#define TOLERANCE 1e-4

/* Every input: raw pixels (NHWC, 0..255 scale) and what Vigil gave for it, per backend. */
static float raw[MAXIN][PER];
static float ours[2][MAXIN][DIM];
static const char *kind[MAXIN];
static int nin;

static void to_crop(const uint8_t *rgb, int w, const int crop[4], float *out)
{
	gpu_to_batch_ref(rgb + ((size_t)crop[1] * w + crop[0]) * 3, crop[2], crop[3], (size_t)w * 3, SIDE, 1, out);
}

/* Faces found by the pipeline with the ONNX model folder: their crops, their descriptors. */
static void pipeline_faces(const char *model_dir, const char *root)
{
	static struct gpu_face f[2][16];
	struct gpu_model *m = NULL;
	char path[1024], err[512];

	if (gpu_model_open(&m, model_dir, err, sizeof(err))) {
		fprintf(stderr, "test_onnx_ort: %s\n", err);
		CHECK(0);
		return;
	}
	CHECK_EQ_INT(gpu_model_info_of(m)->descriptor_dim, DIM);
	CHECK_EQ_INT(gpu_model_info_of(m)->metric, 1);
	for (int i = 1; i <= 6 && nin < MAXIN - 16; i++) {
		struct vg_image img;
		int n[2];

		snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample%d.jpg", root, i);
		if (vg_image_load(path, &img, err, sizeof(err))) {
			fprintf(stderr, "test_onnx_ort: %s\n", err);
			CHECK(0);
			continue;
		}
		for (int b = 0; b < 2; b++) {
			CHECK_EQ_INT(gpu_model_set_backend(m, b ? GPU_BACKEND_REFERENCE : GPU_BACKEND_ONEDNN), 0);
			n[b] = gpu_faces_run(m, img.rgb, img.width, img.height, f[b], 16);
		}
		CHECK_EQ_INT(n[0], n[1]);
		for (int k = 0; k < n[0] && n[0] == n[1]; k++) {
			int crop[4];

			if (!gpu_post_clip_floor(f[0][k].align, (int)img.width, (int)img.height, crop))
				continue;
			to_crop(img.rgb, (int)img.width, crop, raw[nin]);
			for (int b = 0; b < 2; b++) {
				memcpy(ours[b][nin], f[b][k].descriptor, DIM * sizeof(float));
				for (int j = DIM; j < GPU_DESCRIPTOR_MAX; j++)
					CHECK(f[b][k].descriptor[j] == 0.0f);
			}
			kind[nin++] = "demo-photo face";
		}
		gpu_faces_retire(f[0], 16);
		gpu_faces_retire(f[1], 16);
		vg_image_release(&img);
	}
	gpu_model_close(&m);
}

/* The next header number of a PGM at *POS, skipping blanks and # comments; -1 if none. */
static long pgm_number(const uint8_t *b, size_t len, size_t *pos)
{
	long v = -1;

	while (*pos < len && (b[*pos] == ' ' || b[*pos] == '\t' || b[*pos] == '\r' || b[*pos] == '\n' || b[*pos] == '#')) {
		if (b[*pos] == '#')
			while (*pos < len && b[*pos] != '\n')
				(*pos)++;
		else
			(*pos)++;
	}
	while (*pos < len && b[*pos] >= '0' && b[*pos] <= '9' && v < 100000)
		v = (v < 0 ? 0 : v * 10) + (b[(*pos)++] - '0');
	return v;
}

/* A binary PGM (P5, 8-bit) as packed RGB, malloc'd. */
static uint8_t *read_pgm(const char *path, int *w, int *h)
{
	uint8_t *buf, *rgb = NULL;
	size_t len, pos = 2;
	long ww, hh, maxv;

	if (vg_file_read(path, 1u << 24, &buf, &len))
		return NULL;
	if (len > 2 && buf[0] == 'P' && buf[1] == '5' && (ww = pgm_number(buf, len, &pos)) > 0 &&
	    (hh = pgm_number(buf, len, &pos)) > 0 && (maxv = pgm_number(buf, len, &pos)) == 255 && ww <= 4096 &&
	    hh <= 4096 && pos + 1 + (size_t)(ww * hh) <= len && (rgb = malloc((size_t)(ww * hh) * 3))) {
		*w = (int)ww;
		*h = (int)hh;
		for (size_t i = 0; i < (size_t)(ww * hh); i++)
			rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = buf[pos + 1 + i];
	}
	free(buf);
	return rgb;
}

static void att_faces(const char *att)
{
	static const char *const files[] = {"s1/1.pgm", "s2/1.pgm", "s3/4.pgm", "s10/5.pgm", "s21/2.pgm", "s40/10.pgm"};
	char path[1024];

	for (size_t i = 0; i < VG_ARRAY_SIZE(files) && nin < MAXIN; i++) {
		int w, h, crop[4];
		uint8_t *rgb;

		snprintf(path, sizeof(path), "%s/%s", att, files[i]);
		if (!(rgb = read_pgm(path, &w, &h)))
			continue;
		crop[0] = crop[1] = 0;
		crop[2] = w;
		crop[3] = h;
		to_crop(rgb, w, crop, raw[nin]);
		kind[nin++] = "AT&T face";
		free(rgb);
	}
}

static void random_tensors(void)
{
	uint32_t s = 777;

	for (int r = 0; r < 3 && nin < MAXIN; r++) {
		for (int i = 0; i < PER; i++) {
			s = s * 1664525u + 1013904223u;
			raw[nin][i] = -50.0f + 350.0f * (float)(s >> 8) / 16777216.0f;   /* (x-127)/128: about -1.4..1.35 */
		}
		kind[nin++] = "random tensor";
	}
}

/* The imported net alone, on both backends, for the inputs from FROM on. */
static void net_alone(const char *model_dir, int from)
{
	struct gpu_model_manifest mf;
	struct gpu_onnx_net *net = NULL;
	struct gpu_dnnl *d = NULL;
	char err[512];
	uint8_t *buf;
	size_t len;

	CHECK_EQ_INT(gpu_model_manifest_read(model_dir, &mf, err, sizeof(err)), 0);
	CHECK_EQ_INT(gpu_model_onnx_read(&mf, &buf, &len, err, sizeof(err)), 0);
	CHECK_EQ_INT(gpu_onnx_load(&net, buf, len, "fr_feature.onnx", &mf.input, err, sizeof(err)), 0);
	free(buf);
	CHECK_EQ_INT(gpu_dnnl_create(&d, 0, err, sizeof(err)), 0);
	for (int i = from; i < nin && net && d; i++) {
		gpu_onnx_forward(net, d, raw[i], 1, ours[0][i]);
		gpu_onnx_forward(net, NULL, raw[i], 1, ours[1][i]);
	}
	CHECK(d && gpu_dnnl_fallbacks(d) == 0);
	gpu_dnnl_destroy(&d);
	gpu_onnx_free(&net);
}

/* The oracle's outputs for every input: inputs normalised as the manifest says, NCHW. */
static float *oracle(const char *oracle_js, const char *model_dir, const char *out_dir)
{
	static float nchw[PER];
	char in_path[1024], out_path[1024], cmd[4096];
	float *res = NULL;
	uint8_t *buf;
	size_t len;
	FILE *f;
	int rc;

	snprintf(in_path, sizeof(in_path), "%s/inputs.f32", out_dir);
	snprintf(out_path, sizeof(out_path), "%s/outputs.f32", out_dir);
	if (!(f = fopen(in_path, "wb")))
		return NULL;
	for (int i = 0; i < nin; i++) {
		for (int p = 0; p < SIDE * SIDE; p++)
			for (int c = 0; c < 3; c++)
				nchw[c * SIDE * SIDE + p] = (raw[i][p * 3 + c] - 127.0f) / 128.0f;
		fwrite(nchw, sizeof(float), PER, f);
	}
	if (fclose(f))
		return NULL;
	snprintf(cmd, sizeof(cmd), "node '%s' '%s/fr_feature.onnx' '%s' %d 3 %d %d '%s'", oracle_js, model_dir, in_path,
		 nin, SIDE, SIDE, out_path);
	rc = system(cmd);
	if (rc != 0 || vg_file_read(out_path, (size_t)MAXIN * DIM * sizeof(float), &buf, &len)) {
		fprintf(stderr, "test_onnx_ort: the oracle failed: %s\n", cmd);
		return NULL;
	}
	if (len == (size_t)nin * DIM * sizeof(float))
		res = (float *)(void *)buf;
	else
		free(buf);
	return res;
}

/*
 * The importer's own synthetic models (test_onnx_import --write-corpus: every operator it runs,
 * on an 8 x 8 x 3 input) against onnxruntime-web too, so that each operator's meaning is checked
 * against an independent runtime, not only against a second route through the importer.
 * Returns the largest difference.
 */
static double synthetic(const char *dir, const char *oracle_js, const char *out_dir)
{
	static const char *const models[] = {"conv-bn-flatten", "grouped-conv", "tail-0", "tail-1", "tail-2", "tail-3"};
	static const struct gpu_onnx_input in8 = {.width = 8, .height = 8, .mean = {0, 0, 0}, .std = {1, 1, 1}};
	static float x[2][8 * 8 * 3], nchw[8 * 8 * 3], ours2[2][2][GPU_DESCRIPTOR_MAX];
	double worst = 0;
	uint32_t s = 4242;

	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 8 * 8 * 3; j++) {
			s = s * 1664525u + 1013904223u;
			x[i][j] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
		}
	for (size_t mi = 0; mi < VG_ARRAY_SIZE(models); mi++) {
		char path[1024], in_path[1024], out_path[1024], cmd[4096], err[512];
		struct gpu_onnx_net *net = NULL;
		struct gpu_dnnl *d = NULL;
		uint8_t *buf;
		size_t len;
		unsigned dim;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.onnx", dir, models[mi]);
		if (vg_file_read(path, 1u << 20, &buf, &len) || gpu_onnx_load(&net, buf, len, models[mi], &in8, err, sizeof(err))) {
			fprintf(stderr, "test_onnx_ort: %s: cannot load\n", path);
			CHECK(0);
			continue;
		}
		free(buf);
		dim = gpu_onnx_output_dim(net);
		CHECK_EQ_INT(gpu_dnnl_create(&d, 0, err, sizeof(err)), 0);
		for (int i = 0; i < 2; i++) {
			gpu_onnx_forward(net, d, x[i], 1, ours2[0][i]);
			gpu_onnx_forward(net, NULL, x[i], 1, ours2[1][i]);
		}
		gpu_dnnl_destroy(&d);
		gpu_onnx_free(&net);
		snprintf(in_path, sizeof(in_path), "%s/synthetic-in.f32", out_dir);
		snprintf(out_path, sizeof(out_path), "%s/synthetic-out.f32", out_dir);
		if (!(f = fopen(in_path, "wb")))
			continue;
		for (int i = 0; i < 2; i++) {
			for (int p = 0; p < 64; p++)
				for (int c = 0; c < 3; c++)
					nchw[c * 64 + p] = x[i][p * 3 + c];
			fwrite(nchw, sizeof(float), VG_ARRAY_SIZE(nchw), f);
		}
		fclose(f);
		snprintf(cmd, sizeof(cmd), "node '%s' '%s' '%s' 2 3 8 8 '%s'", oracle_js, path, in_path, out_path);
		if (system(cmd) != 0 || vg_file_read(out_path, 1u << 20, &buf, &len) || len != 2 * dim * sizeof(float)) {
			fprintf(stderr, "test_onnx_ort: the oracle failed on %s\n", path);
			CHECK(0);
			continue;
		}
		for (int b = 0; b < 2; b++)
			for (int i = 0; i < 2; i++)
				for (unsigned j = 0; j < dim; j++)
					worst = fmax(worst, fabs((double)ours2[b][i][j] - ((const float *)(const void *)buf)[i * dim + j]));
		free(buf);
	}
	return worst;
}

int main(int argc, char **argv)
{
	double worst[2] = {0, 0};
	const char *worst_kind[2] = {"", ""};
	float *want;
	int from, natt;

	const char *synth = NULL;

	if (argc > 1 && strncmp(argv[argc - 1], "--synthetic=", 12) == 0)
		synth = argv[--argc] + 12;
	if (argc < 5)
		return 2;
	pipeline_faces(argv[1], argv[4]);
	CHECK(nin >= 10);   /* face-api finds 22 faces in its six demo photos; 16 fit */
	from = nin;
	if (argc > 5)
		att_faces(argv[5]);
	natt = nin - from;
	CHECK(argc <= 5 || natt == 6);
	random_tensors();
	net_alone(argv[1], from);
	if (!(want = oracle(argv[2], argv[1], argv[3]))) {
		CHECK(0);
		return vg_test_exit();
	}
	for (int b = 0; b < 2; b++)
		for (int i = 0; i < nin; i++)
			for (int j = 0; j < DIM; j++) {
				double e = fabs((double)ours[b][i][j] - want[(size_t)i * DIM + j]);

				if (e > worst[b]) {
					worst[b] = e;
					worst_kind[b] = kind[i];
				}
			}
	printf("test_onnx_ort: %d inputs: %d demo-photo faces through the pipeline, %d AT&T faces, %d random tensors\n",
	       nin, from, natt, nin - from - natt);
	printf("test_onnx_ort: max |vigil - onnxruntime-web| per element: oneDNN %.3g (%s), reference %.3g (%s); tolerance %g\n",
	       worst[0], worst_kind[0], worst[1], worst_kind[1], TOLERANCE);
	CHECK(worst[0] <= TOLERANCE);
	CHECK(worst[1] <= TOLERANCE);
	free(want);
	if (synth) {
		double w = synthetic(synth, argv[2], argv[3]);

		printf("test_onnx_ort: the importer's 6 synthetic models (every operator): max |vigil - onnxruntime-web| %.3g\n", w);
		CHECK(w <= 1e-5);
	}
	return vg_test_exit();
}
