/*
 * Proof 1 of the ONNX importer (issue 17): face-api's recognition net, exported to ONNX by
 * tools/onnx-export-faceapi and imported, gives the built-in net's descriptors bit for bit:
 *   1. the nets alone, on the same crops (random pixels; batches of 1, 3 and 8), on the
 *      reference kernels and on oneDNN;
 *   2. the whole pipeline (detect, landmarks, align, describe) on face-api's six demo photos,
 *      the built-in model folder against the exported ONNX model folder, on both backends;
 *   3. the model's identity: the manifest's id, the file's sha256, 128-d, L2, 0.6.
 *   test_onnx_faceapi SOURCE_ROOT ONNX_MODEL_DIR   (test_onnx_faceapi.sh exports the folder)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "gpu_int.h"
#include "onnx/gpu_onnx.h"
#include "vg_base.h"
#include "vg_file.h"
#include "vg_image.h"
#include "vg_test.h"

#define NIMG 6
#define MAXF 32
#define CROP (150 * 150 * 3)

static double max_abs_diff(const float *a, const float *b, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs((double)a[i] - b[i]));
	return m;
}

/* 1. the nets alone: the built-in gpu_rec and the imported net on the same crops */
static void nets_alone(const char *facedir, const char *onnxdir)
{
	static float crops[GPU_REC_BATCH * CROP], want[GPU_REC_BATCH * 128], got[GPU_REC_BATCH * 128];
	static const int batches[] = {1, 3, 8};
	struct gpu_model_manifest mf;
	struct gpu_weights *w = NULL;
	struct gpu_rec *rec = NULL;
	struct gpu_onnx_net *net = NULL;
	struct gpu_dnnl *d_rec = NULL, *d_onnx = NULL;
	char err[512];
	uint8_t *buf;
	size_t len;
	uint32_t s = 12345;
	double worst = 0;

	CHECK_EQ_INT(gpu_model_manifest_read(onnxdir, &mf, err, sizeof(err)), 0);
	CHECK_EQ_INT(gpu_model_onnx_read(&mf, &buf, &len, err, sizeof(err)), 0);
	CHECK_EQ_INT(gpu_onnx_load(&net, buf, len, "face_recognition.onnx", &mf.input, err, sizeof(err)), 0);
	free(buf);
	CHECK_EQ_INT(gpu_weights_load(&w, facedir, "face_recognition_model", err, sizeof(err)), 0);
	CHECK_EQ_INT(gpu_rec_create(&rec, w, err, sizeof(err)), 0);
	CHECK_EQ_INT(gpu_dnnl_create(&d_rec, 0, err, sizeof(err)), 0);
	CHECK_EQ_INT(gpu_dnnl_create(&d_onnx, 0, err, sizeof(err)), 0);
	if (!net || !rec || !d_rec || !d_onnx)
		goto out;
	CHECK_EQ_INT(gpu_onnx_output_dim(net), 128);
	CHECK_EQ_INT(gpu_onnx_conv_count(net), 29);   /* every scale, ReLU folded: the built-in's 29 layers */
	for (size_t i = 0; i < VG_ARRAY_SIZE(crops); i++) {
		s = s * 1664525u + 1013904223u;
		crops[i] = (float)(s >> 24);
	}
	for (int backend = 0; backend < 2; backend++)
		for (size_t b = 0; b < VG_ARRAY_SIZE(batches); b++) {
			int nb = batches[b];

			gpu_rec_forward(rec, backend ? d_rec : NULL, crops, nb, want);
			gpu_onnx_forward(net, backend ? d_onnx : NULL, crops, nb, got);
			worst = fmax(worst, max_abs_diff(want, got, (size_t)nb * 128));
			CHECK(memcmp(want, got, (size_t)nb * 128 * sizeof(float)) == 0);
		}
	CHECK_EQ_INT(gpu_dnnl_fallbacks(d_onnx), 0);
	printf("test_onnx_faceapi: nets alone, 12 crops x 2 backends: max |built-in - onnx| = %g\n", worst);
out:
	gpu_dnnl_destroy(&d_rec);
	gpu_dnnl_destroy(&d_onnx);
	gpu_onnx_free(&net);
	gpu_rec_destroy(&rec);
	gpu_weights_close(&w);
}

/* 2. the whole pipeline, both model folders, both backends */
static void pipeline(const char *root, const char *facedir, const char *onnxdir)
{
	static struct gpu_face a[MAXF], b[MAXF];
	static struct vg_image img[NIMG];
	struct gpu_model *builtin = NULL, *onnx = NULL;
	char path[1024], err[512];
	int faces = 0;
	double worst = 0;

	CHECK_EQ_INT(gpu_model_open(&builtin, facedir, err, sizeof(err)), 0);
	if (gpu_model_open(&onnx, onnxdir, err, sizeof(err)))
		fprintf(stderr, "test_onnx_faceapi: %s\n", err);
	CHECK(onnx != NULL);
	for (int i = 0; i < NIMG; i++) {
		snprintf(path, sizeof(path), "%s/fetched/face-api-1.7.15/demo/sample%d.jpg", root, i + 1);
		CHECK_EQ_INT(vg_image_load(path, &img[i], err, sizeof(err)), 0);
	}
	for (int backend = 0; backend < 2 && builtin && onnx; backend++) {
		enum gpu_backend be = backend ? GPU_BACKEND_REFERENCE : GPU_BACKEND_ONEDNN;

		CHECK_EQ_INT(gpu_model_set_backend(builtin, be), 0);
		CHECK_EQ_INT(gpu_model_set_backend(onnx, be), 0);
		for (int i = 0; i < NIMG; i++) {
			int na = gpu_faces_run(builtin, img[i].rgb, img[i].width, img[i].height, a, MAXF);
			int nb = gpu_faces_run(onnx, img[i].rgb, img[i].width, img[i].height, b, MAXF);

			CHECK_EQ_INT(na, nb);
			for (int k = 0; k < na && na == nb; k++) {
				worst = fmax(worst, max_abs_diff(a[k].descriptor, b[k].descriptor, GPU_DESCRIPTOR_MAX));
				CHECK(memcmp(a[k].descriptor, b[k].descriptor, sizeof(a[k].descriptor)) == 0);
				CHECK(memcmp(a[k].box, b[k].box, sizeof(a[k].box)) == 0);
			}
			faces += na > 0 ? na : 0;
			gpu_faces_retire(a, MAXF);
			gpu_faces_retire(b, MAXF);
		}
	}
	CHECK(faces >= 2 * 20);   /* face-api finds 22 faces in its six demo photos */
	printf("test_onnx_faceapi: pipeline, %d faces (6 photos x 2 backends): max |built-in - onnx| = %g\n", faces,
	       worst);
	for (int i = 0; i < NIMG; i++)
		vg_image_release(&img[i]);
	gpu_model_close(&onnx);
	gpu_model_close(&builtin);
}

/* 3. identity: open and identify agree, from the manifest, with the file's sha256 checked */
static void identity(const char *onnxdir)
{
	struct gpu_model_info id;
	struct gpu_model *m = NULL;
	char err[512];

	CHECK_EQ_INT(gpu_model_identify(onnxdir, &id, err, sizeof(err)), 0);
	CHECK_EQ_STR(id.id, "faceapi-onnx");
	CHECK_EQ_INT(id.descriptor_dim, 128);
	CHECK_EQ_INT(id.metric, 0);
	CHECK(id.threshold == 0.6);
	CHECK_EQ_INT((int)strlen(id.digest), 64);
	if (gpu_model_open(&m, onnxdir, err, sizeof(err)) == 0) {
		const struct gpu_model_info *o = gpu_model_info_of(m);

		CHECK_EQ_STR(o->id, id.id);
		CHECK_EQ_STR(o->digest, id.digest);
		CHECK(o->descriptor_dim == id.descriptor_dim && o->metric == id.metric && o->threshold == id.threshold);
		gpu_model_close(&m);
	}
}

int main(int argc, char **argv)
{
	char facedir[1024];

	if (argc < 3)
		return 2;
	snprintf(facedir, sizeof(facedir), "%s/fetched/face-api-1.7.15/model", argv[1]);
	identity(argv[2]);
	nets_alone(facedir, argv[2]);
	pipeline(argv[1], facedir, argv[2]);
	return vg_test_exit();
}
