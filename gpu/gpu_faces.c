/*
 * The face pipeline as face-api.js runs it (detectAllFaces -> withFaceLandmarks ->
 * withFaceDescriptors), with its quirks kept for bit-compatibility (face-nets.md §3, §5-7):
 * the SSD input padded bottom/right and resized to 512; boxes clipped to 0..1 then scaled back
 * by 512/round(side*512/max); crops clipped and floored; landmarks shifted by the unfloored box;
 * the dlib-style alignment rectangle without rotation.
 *
 * Work per image: SSD 3.1 GMAC, then per face 52 MMAC (landmarks) + 271 MMAC (descriptor); on
 * one core with oneDNN: 35 ms + ~4 ms per face (bench_facenet). Tiled: one more SSD pass per
 * 512 tile, 18 for 1080p at overlap 192 (~0.65 s on one core).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu_int.h"
#include "gpu_post.h"
#include "onnx/gpu_onnx.h"
#include "vg_base.h"
#include "vg_log.h"
#include "vg_pool.h"

struct gpu_model {
	struct gpu_weights *w_ssd, *w_lm, *w_rec;
	struct gpu_ssd *ssd;
	struct gpu_lm *lm;
	struct gpu_rec *rec;
	struct gpu_weights *w_tiny;   /* optional: NULL when the model folder has no tiny detector */
	struct gpu_tiny *tiny;
	float *in416, *tiny_out;
	struct gpu_dnnl *dnnl;    /* detector and landmarks; NULL: the reference kernels */
	struct gpu_dnnl *dnnl_rec;   /* the descriptor net (bf16 in the fast mode) */
	struct gpu_dnnl *dnnl_owned;
	struct gpu_dnnl *dnnl_bf16;   /* made on the first switch to GPU_BACKEND_ONEDNN_BF16 */
	/* scratch: inputs of the nets and the detector outputs, sized at open */
	float *in512, *in112, *in150;
	float *boxes, *scores;
	int *order;
	void *cands;   /* GPU_TILE_CANDS candidates of tiled detection */
	float *desc_scratch;   /* GPU_REC_BATCH descriptors, for the warm-up */
	struct gpu_offload offload;   /* another backend's passes (ctx NULL: none) */
	unsigned long offload_failures;
	struct gpu_model_info info;
	/* an ONNX model folder: its descriptor net replaces face-api's (rec and w_rec NULL) */
	struct gpu_onnx_net *onnx;
	struct gpu_onnx_input onnx_in;
	float *in_onnx;        /* GPU_REC_BATCH aligned crops at the ONNX net's input size */
};

#define GPU_TILE_CANDS GPU_POST_TILE_CANDS   /* about 30 boxes over 0.5 per face: room for 100+ faces */
#define GPU_TILES_MAX_SIDE GPU_POST_TILES_MAX_SIDE

/* An ONNX model folder's descriptor net: the file checked against the manifest, imported, and
 * its output as long as the manifest's descriptor_dim. */
static int onnx_open(struct gpu_model *m, const struct gpu_model_manifest *mf, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if ((rc = gpu_model_onnx_read(mf, &buf, &len, err, errlen)))
		return rc;
	rc = gpu_onnx_load(&m->onnx, buf, len, mf->onnx_path, &mf->input, err, errlen);
	free(buf);
	if (rc)
		return rc;
	if (gpu_onnx_output_dim(m->onnx) != mf->info.descriptor_dim)
		return vg_errf(err, errlen, -EINVAL, "%s: the net gives %u values per face, descriptor_dim says %u",
			       mf->onnx_path, gpu_onnx_output_dim(m->onnx), mf->info.descriptor_dim);
	m->info = mf->info;
	m->onnx_in = mf->input;
	m->in_onnx = gpu_bio_alloc((size_t)GPU_REC_BATCH * mf->input.width * mf->input.height * 3 * sizeof(float));
	return m->in_onnx ? 0 : vg_errf(err, errlen, -ENOMEM, "model: out of memory");
}

int gpu_model_open(struct gpu_model **out, const char *dir, char *err, size_t errlen)
{
	struct gpu_model *m = calloc(1, sizeof(*m));
	struct gpu_model_manifest *mf = NULL;
	const char *det = dir;   /* the face-api folder of the detector and landmark nets */
	char sub[320];
	int rc;

	if (!m)
		return vg_errf(err, errlen, -ENOMEM, "model: out of memory");
	if (gpu_model_folder_is_onnx(dir)) {
		if (!(mf = malloc(sizeof(*mf)))) {
			rc = vg_errf(err, errlen, -ENOMEM, "model: out of memory");
			goto out_close;
		}
		if ((rc = gpu_model_manifest_read(dir, mf, err, errlen)))
			goto out_close;
		det = mf->detector_dir;
	}
	if ((rc = gpu_weights_load(&m->w_ssd, det, "ssd_mobilenetv1_model", err, errlen)) ||
	    (rc = gpu_weights_load(&m->w_lm, det, "face_landmark_68_model", err, errlen)))
		goto out_close;
	if (mf) {
		if ((rc = onnx_open(m, mf, err, errlen)))
			goto out_close;
	} else {
		if ((rc = gpu_weights_load(&m->w_rec, dir, "face_recognition_model", err, errlen)))
			goto out_close;
		gpu_model_info_fill(&m->info, m->w_ssd, m->w_lm, m->w_rec);
		if ((rc = gpu_rec_create(&m->rec, m->w_rec, sub, sizeof(sub)))) {
			vg_errf(err, errlen, rc, "%s/face_recognition_model: %s", dir, sub);
			goto out_close;
		}
	}
	if ((rc = gpu_ssd_create(&m->ssd, m->w_ssd, sub, sizeof(sub)))) {
		vg_errf(err, errlen, rc, "%s/ssd_mobilenetv1_model: %s", det, sub);
		goto out_close;
	}
	if ((rc = gpu_lm_create(&m->lm, m->w_lm, sub, sizeof(sub)))) {
		vg_errf(err, errlen, rc, "%s/face_landmark_68_model: %s", det, sub);
		goto out_close;
	}
	m->in512 = gpu_bio_alloc(512 * 512 * 3 * sizeof(float));
	m->in112 = gpu_bio_alloc(112 * 112 * 3 * sizeof(float));
	m->in150 = gpu_bio_alloc((size_t)GPU_REC_BATCH * 150 * 150 * 3 * sizeof(float));
	m->boxes = gpu_bio_alloc(GPU_SSD_ANCHORS * 4 * sizeof(float));
	m->scores = gpu_bio_alloc(GPU_SSD_ANCHORS * sizeof(float));
	m->order = gpu_bio_alloc(GPU_SSD_ANCHORS * sizeof(int));
	m->cands = gpu_bio_alloc(GPU_TILE_CANDS * 5 * sizeof(double));
	m->desc_scratch = gpu_bio_alloc(GPU_REC_BATCH * GPU_DESCRIPTOR_MAX * sizeof(float));
	if (!m->in512 || !m->in112 || !m->in150 || !m->boxes || !m->scores || !m->order || !m->cands || !m->desc_scratch) {
		rc = vg_errf(err, errlen, -ENOMEM, "model: out of memory");
		goto out_close;
	}
	/* the tiny detector is optional: loaded when its files are there */
	{
		char path[GPU_MODEL_PATH_MAX + 64];

		snprintf(path, sizeof(path), "%s/tiny_face_detector_model-weights_manifest.json", det);
		if (access(path, F_OK) == 0) {
			if ((rc = gpu_weights_load(&m->w_tiny, det, "tiny_face_detector_model", err, errlen)))
				goto out_close;
			if ((rc = gpu_tiny_create(&m->tiny, m->w_tiny, sub, sizeof(sub)))) {
				vg_errf(err, errlen, rc, "%s/tiny_face_detector_model: %s", det, sub);
				goto out_close;
			}
			m->in416 = gpu_bio_alloc(GPU_TINY_INPUT * GPU_TINY_INPUT * 3 * sizeof(float));
			m->tiny_out = gpu_bio_alloc(GPU_TINY_CELLS * GPU_TINY_CELLS * 25 * sizeof(float));
			if (!m->in416 || !m->tiny_out) {
				rc = vg_errf(err, errlen, -ENOMEM, "model: out of memory");
				goto out_close;
			}
		}
	}
	if ((rc = gpu_dnnl_create(&m->dnnl_owned, 0, err, errlen)))
		goto out_close;
	/* -EIO: oneDNN refused some layers; the reference kernels serve those (slower, same
	 * results), so the model still opens */
	if (gpu_model_set_backend(m, GPU_BACKEND_ONEDNN) == -EIO)
		VG_LOG(GPU, WARN, "onednn refused %d conv layers: the reference kernels run them",
		       gpu_dnnl_fallbacks(m->dnnl_owned));
	free(mf);
	*out = m;
	return 0;

out_close:
	free(mf);
	gpu_model_close(&m);
	return rc;
}

const struct gpu_model_info *gpu_model_info_of(const struct gpu_model *model)
{
	return &model->info;
}

void gpu_model_close(struct gpu_model **model)
{
	struct gpu_model *m = model ? *model : NULL;

	if (!m)
		return;
	gpu_ssd_destroy(&m->ssd);
	gpu_lm_destroy(&m->lm);
	gpu_rec_destroy(&m->rec);
	gpu_onnx_free(&m->onnx);
	gpu_bio_free(m->in_onnx);
	gpu_tiny_destroy(&m->tiny);
	gpu_weights_close(&m->w_tiny);
	gpu_bio_free(m->in416);
	gpu_bio_free(m->tiny_out);
	gpu_dnnl_destroy(&m->dnnl_owned);
	gpu_dnnl_destroy(&m->dnnl_bf16);
	gpu_weights_close(&m->w_ssd);
	gpu_weights_close(&m->w_lm);
	gpu_weights_close(&m->w_rec);
	/* the inputs held face pixels: gpu_bio_free zeroes them */
	gpu_bio_free(m->in512);
	gpu_bio_free(m->in112);
	gpu_bio_free(m->in150);
	gpu_bio_free(m->boxes);
	gpu_bio_free(m->scores);
	gpu_bio_free(m->order);
	gpu_bio_free(m->cands);
	gpu_bio_free(m->desc_scratch);
	free(m);
	*model = NULL;
}

/* One pass of each net on zeros, so that every oneDNN primitive exists before real frames. */
static int warm_up(struct gpu_model *m)
{
	float out[136];

	memset(m->in512, 0, 512 * 512 * 3 * sizeof(float));
	memset(m->in112, 0, 112 * 112 * 3 * sizeof(float));
	memset(m->in150, 0, (size_t)GPU_REC_BATCH * 150 * 150 * 3 * sizeof(float));
	gpu_ssd_forward(m->ssd, m->dnnl, m->in512, m->boxes, m->scores);
	gpu_lm_forward(m->lm, m->dnnl, m->in112, out);
	if (m->tiny) {
		memset(m->in416, 0, GPU_TINY_INPUT * GPU_TINY_INPUT * 3 * sizeof(float));
		gpu_tiny_forward(m->tiny, m->dnnl, m->in416, m->tiny_out);
	}
	/* every batch size the descriptor net may see */
	if (m->onnx)
		memset(m->in_onnx, 0, (size_t)GPU_REC_BATCH * m->onnx_in.width * m->onnx_in.height * 3 * sizeof(float));
	for (int nb = 1; nb <= GPU_REC_BATCH; nb++) {
		if (m->onnx)
			gpu_onnx_forward(m->onnx, m->dnnl_rec, m->in_onnx, nb, m->desc_scratch);
		else
			gpu_rec_forward(m->rec, m->dnnl_rec, m->in150, nb, m->desc_scratch);
	}
	return gpu_dnnl_fallbacks(m->dnnl) || gpu_dnnl_fallbacks(m->dnnl_rec) ? -EIO : 0;
}

int gpu_model_set_backend(struct gpu_model *m, enum gpu_backend backend)
{
	if (!m)
		return -EINVAL;
	if (backend == GPU_BACKEND_REFERENCE) {
		m->dnnl = m->dnnl_rec = NULL;
		return 0;
	}
	if (!m->dnnl_owned)
		return -EINVAL;
	if (backend == GPU_BACKEND_ONEDNN_BF16) {
		/* bf16 for the descriptor net only: detector and landmarks in bf16 move the floored
		 * crops by a pixel, which moves descriptors by up to 0.1 (measured: test_bf16) */
		if (!m->dnnl_bf16 && gpu_dnnl_create(&m->dnnl_bf16, 1, NULL, 0))
			return -ENODEV;
		m->dnnl = m->dnnl_owned;
		m->dnnl_rec = m->dnnl_bf16;
		if (warm_up(m)) {   /* a CPU without bf16 kernels: stay exact */
			m->dnnl_rec = m->dnnl_owned;
			return -ENOTSUP;
		}
		return 0;
	}
	if (backend != GPU_BACKEND_ONEDNN)
		return -EINVAL;
	m->dnnl = m->dnnl_rec = m->dnnl_owned;
	return warm_up(m);
}

/* ---- the forward passes: another backend's where one is set, else the CPU's ---------------- */

static void ssd_forward(struct gpu_model *m)
{
	if (m->offload.ssd && m->offload.ssd(m->offload.ctx, m->in512, m->boxes, m->scores) == 0)
		return;
	m->offload_failures += m->offload.ssd != NULL;
	gpu_ssd_forward(m->ssd, m->dnnl, m->in512, m->boxes, m->scores);
}

static void lm_forward(struct gpu_model *m, float *out136)
{
	if (m->offload.lm && m->offload.lm(m->offload.ctx, m->in112, out136) == 0)
		return;
	m->offload_failures += m->offload.lm != NULL;
	gpu_lm_forward(m->lm, m->dnnl, m->in112, out136);
}

/* NB descriptors into OUT, info.descriptor_dim floats each, one after the other. */
static void rec_forward(struct gpu_model *m, int nb, float *out128)
{
	if (m->onnx) {   /* no other backend runs ONNX nets (yet) */
		gpu_onnx_forward(m->onnx, m->dnnl_rec, m->in_onnx, nb, out128);
		return;
	}
	if (m->offload.rec && m->offload.rec(m->offload.ctx, m->in150, nb, out128) == 0)
		return;
	m->offload_failures += m->offload.rec != NULL;
	gpu_rec_forward(m->rec, m->dnnl_rec, m->in150, nb, out128);
}

void gpu_model_set_offload(struct gpu_model *m, const struct gpu_offload *o)
{
	if (!m)
		return;
	if (o)
		m->offload = *o;
	else
		memset(&m->offload, 0, sizeof(m->offload));
}

unsigned long gpu_model_offload_failures(const struct gpu_model *m)
{
	return m ? m->offload_failures : 0;
}

const struct gpu_ssd *gpu_model_ssd(const struct gpu_model *m)
{
	return m ? m->ssd : NULL;
}

const struct gpu_lm *gpu_model_lm(const struct gpu_model *m)
{
	return m ? m->lm : NULL;
}

const struct gpu_rec *gpu_model_rec(const struct gpu_model *m)
{
	return m ? m->rec : NULL;
}

/* ---- detection (SsdMobilenetv1.locateFaces: gpu_post.h) ---------------------------------------- */

static int detect(struct gpu_model *m, const uint8_t *rgb, int w, int h, struct gpu_face *faces, int max)
{
	gpu_to_batch_ref(rgb, w, h, (size_t)w * 3, 512, 0, m->in512);
	ssd_forward(m);
	return gpu_post_ssd_faces(m->boxes, m->scores, m->order, w, h, faces, max);
}

static void landmarks(struct gpu_model *m, const uint8_t *rgb, int w, struct gpu_face *f, const int crop[4])
{
	float out[136];

	gpu_to_batch_ref(rgb + ((size_t)crop[1] * w + crop[0]) * 3, crop[2], crop[3], (size_t)w * 3,
			 112, 1, m->in112);
	lm_forward(m, out);
	gpu_post_landmarks(out, crop, f);
}

/* The sharpness of the 150 x 150 crop at IN150 (gpu_post.h). */
static double sharpness(const float *in150)
{
	double rs[GPU_POST_CROP - 2], rs2[GPU_POST_CROP - 2];

	for (int y = 1; y < GPU_POST_CROP - 1; y++)
		gpu_post_sharpness_row(in150, y, &rs[y - 1], &rs2[y - 1]);
	return gpu_post_sharpness(rs, rs2);
}

/*
 * Align, crop and describe up to GPU_REC_BATCH faces as one batch of the descriptor net. The
 * alignment uses the landmark crop's size as face-api does (the clipped, floored box; the whole
 * image when that is empty). Returns a bit per face: 1 = described, 0 = empty aligned crop
 * (descriptor zeroed).
 */
static unsigned describe_batch(struct gpu_model *m, const uint8_t *rgb, int w, int h,
			       struct gpu_face *faces, int n)
{
	const size_t slot = 150 * 150 * 3;
	const size_t onnx_slot = (size_t)m->onnx_in.width * m->onnx_in.height * 3;
	const unsigned dim = m->info.descriptor_dim;
	float desc[GPU_REC_BATCH * GPU_DESCRIPTOR_MAX];
	int idx[GPU_REC_BATCH], nb = 0;
	unsigned ok = 0;

	for (int i = 0; i < n && i < GPU_REC_BATCH; i++) {
		struct gpu_face *f = &faces[i];
		int lm[4], crop[4];

		if (!gpu_post_clip_floor(f->box, w, h, lm))
			lm[2] = w, lm[3] = h;
		gpu_post_align_rect(f, lm[2], lm[3], f->align);
		if (!gpu_post_clip_floor(f->align, w, h, crop)) {
			memset(f->descriptor, 0, sizeof(f->descriptor));
			continue;
		}
		gpu_to_batch_ref(rgb + ((size_t)crop[1] * w + crop[0]) * 3, crop[2], crop[3], (size_t)w * 3,
				 150, 1, m->in150 + (size_t)nb * slot);
		/* an ONNX net's input: the same aligned crop, resampled to its size the same way */
		if (m->onnx)
			gpu_to_batch_ref(rgb + ((size_t)crop[1] * w + crop[0]) * 3, crop[2], crop[3], (size_t)w * 3,
					 m->onnx_in.width, 1, m->in_onnx + (size_t)nb * onnx_slot);
		idx[nb++] = i;
	}
	if (nb == 0)
		return 0;
	rec_forward(m, nb, desc);
	for (int j = 0; j < nb; j++) {
		struct gpu_face *f = &faces[idx[j]];

		memset(f->descriptor, 0, sizeof(f->descriptor));
		memcpy(f->descriptor, desc + (size_t)j * dim, dim * sizeof(float));
		f->quality.sharpness = sharpness(m->in150 + (size_t)j * slot);
		gpu_post_quality(f);
		ok |= 1u << idx[j];
	}
	vg_scrub(desc, sizeof(desc));
	return ok;
}

static int size_ok(uint32_t width, uint32_t height)
{
	return width > 0 && height > 0 && width <= 16384 && height <= 16384;
}

/* Landmarks, alignment and descriptor for the N detected faces; drops the ones whose crops are
 * empty. Returns how many are kept. */
static int finish(struct gpu_model *m, const uint8_t *rgb, int w, int h, struct gpu_face *faces, int n)
{
	int kept = 0, done = 0;

	for (int i = 0; i < n; i++) {
		struct gpu_face *f = &faces[i];
		int crop[4];

		/* extractFaceTensors drops empty crops (face-api then misaligns its arrays; we drop
		 * the face) */
		if (!gpu_post_clip_floor(f->box, w, h, crop))
			continue;
		landmarks(m, rgb, w, f, crop);
		if (kept != i)
			faces[kept] = *f;
		kept++;
	}
	if (kept < n)
		gpu_faces_retire(faces + kept, n - kept);
	n = kept;
	kept = 0;
	for (int i = 0; i < n; i += GPU_REC_BATCH) {
		int nb = n - i < GPU_REC_BATCH ? n - i : GPU_REC_BATCH;
		unsigned ok = describe_batch(m, rgb, w, h, faces + i, nb);

		for (int j = 0; j < nb; j++) {
			if (!(ok & (1u << j)))
				continue;
			if (kept != i + j)
				faces[kept] = faces[i + j];
			kept++;
		}
		done += nb;
	}
	if (kept < done)
		gpu_faces_retire(faces + kept, done - kept);
	return kept;
}

int gpu_faces_run(struct gpu_model *m, const uint8_t *rgb, uint32_t width, uint32_t height,
		  struct gpu_face *faces, int max)
{
	int n;

	if (!m || !rgb || !faces || max < 0 || !size_ok(width, height))
		return -EINVAL;
	if (max > GPU_MAX_FACES)
		max = GPU_MAX_FACES;
	n = detect(m, rgb, (int)width, (int)height, faces, max);
	return finish(m, rgb, (int)width, (int)height, faces, n);
}

/* ---- tiled detection for large frames (gpu_post.h) ------------------------------------------ */

int gpu_faces_run_tiled(struct gpu_model *m, const uint8_t *rgb, uint32_t width, uint32_t height,
			int overlap, struct gpu_face *faces, int max)
{
	int w = (int)width, h = (int)height, nc = 0, n;
	int ox[GPU_TILES_MAX_SIDE], oy[GPU_TILES_MAX_SIDE], nx, ny;
	struct gpu_post_cand *c = (struct gpu_post_cand *)m->cands;

	if (!m || !rgb || !faces || max < 0 || !size_ok(width, height) || overlap < 0 || overlap > 448)
		return -EINVAL;
	if (max > GPU_MAX_FACES)
		max = GPU_MAX_FACES;
	if (w <= 512 || h <= 512)
		return gpu_faces_run(m, rgb, width, height, faces, max);
	/* 1. the whole frame, downscaled: the large faces (FACES, MAX long, is the scratch) */
	n = detect(m, rgb, w, h, faces, max);
	for (int i = 0; i < n && nc < GPU_TILE_CANDS; i++, nc++)
		c[nc] = (struct gpu_post_cand){faces[i].box[0], faces[i].box[1], faces[i].box[0] + faces[i].box[2],
					       faces[i].box[1] + faces[i].box[3], faces[i].score};
	/* 2. overlapping native-resolution 512 tiles: the small faces */
	nx = gpu_post_tile_origins(w, 512 - overlap, ox, GPU_TILES_MAX_SIDE);
	ny = gpu_post_tile_origins(h, 512 - overlap, oy, GPU_TILES_MAX_SIDE);
	for (int ty = 0; ty < ny; ty++) {
		for (int tx = 0; tx < nx; tx++) {
			gpu_to_batch_ref(rgb + ((size_t)oy[ty] * w + ox[tx]) * 3, 512, 512, (size_t)w * 3, 512, 0,
					 m->in512);
			ssd_forward(m);
			nc = gpu_post_tile_cands(m->boxes, m->scores, ox[tx], oy[ty], w, h, overlap, c, nc, GPU_TILE_CANDS);
		}
	}
	/* 3. one NMS over everything, by score */
	n = gpu_post_tiled_merge(c, nc, max, faces);
	vg_scrub(c, (size_t)nc * sizeof(*c));
	return finish(m, rgb, w, h, faces, n);
}

/* ---- the tiny face detector (TinyYolov2Base.locateFaces, face-nets.md §8) ------------------ */

static double sigm(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

static const double tiny_anchors[5][2] = {{1.603231, 2.094468}, {6.041143, 7.080126}, {2.882459, 3.518061},
					  {4.266906, 5.178857}, {9.041765, 10.66308}};

int gpu_faces_run_tiny(struct gpu_model *m, const uint8_t *rgb, uint32_t width, uint32_t height,
		       struct gpu_face *faces, int max)
{
	int w = (int)width, h = (int)height, nc = 0, nsel = 0;
	struct gpu_post_cand *c;
	double sc, cfx, cfy;

	if (!m || !rgb || !faces || max < 0 || !size_ok(width, height))
		return -EINVAL;
	if (!m->tiny)
		return -ENOENT;
	if (max > GPU_MAX_FACES)
		max = GPU_MAX_FACES;
	c = (struct gpu_post_cand *)m->cands;
	sc = (double)GPU_TINY_INPUT / (w > h ? w : h);
	cfx = GPU_TINY_INPUT / floor(w * sc + 0.5);
	cfy = GPU_TINY_INPUT / floor(h * sc + 0.5);
	gpu_to_batch_ref(rgb, w, h, (size_t)w * 3, GPU_TINY_INPUT, 0, m->in416);
	gpu_tiny_forward(m->tiny, m->dnnl, m->in416, m->tiny_out);
	for (int row = 0; row < GPU_TINY_CELLS; row++) {
		for (int col = 0; col < GPU_TINY_CELLS; col++) {
			for (int a = 0; a < 5; a++) {
				const float *t = m->tiny_out + ((size_t)(row * GPU_TINY_CELLS + col) * 5 + a) * 5;
				double score = sigm(t[4]), cx, cy, bw, bh;

				if (!(score > 0.5) || nc >= GPU_TILE_CANDS)
					continue;
				cx = (col + sigm(t[0])) / GPU_TINY_CELLS * cfx;
				cy = (row + sigm(t[1])) / GPU_TINY_CELLS * cfy;
				bw = exp(t[2]) * tiny_anchors[a][0] / GPU_TINY_CELLS * cfx;
				bh = exp(t[3]) * tiny_anchors[a][1] / GPU_TINY_CELLS * cfy;
				c[nc++] = (struct gpu_post_cand){cx - bw / 2, cy - bh / 2, cx - bw / 2 + bw, cy - bh / 2 + bh, score};
			}
		}
	}
	/* ops/nonMaxSuppression.ts: stable ascending sort, pop the last, drop IoU > 0.4 (on boxes
	 * scaled by the input size: the same ratio) */
	for (int i = 1; i < nc; i++) {
		struct gpu_post_cand t = c[i];
		int j = i;

		for (; j > 0 && c[j - 1].score > t.score; j--)
			c[j] = c[j - 1];
		c[j] = t;
	}
	while (nc > 0 && nsel < max) {
		struct gpu_post_cand cur = c[--nc];
		int k = 0;

		for (int i = 0; i < nc; i++)
			if (gpu_post_cand_iou(&cur, &c[i]) <= 0.4)
				c[k++] = c[i];
		nc = k;
		memset(&faces[nsel], 0, sizeof(faces[nsel]));
		faces[nsel].box[0] = cur.x0 * w;
		faces[nsel].box[1] = cur.y0 * h;
		faces[nsel].box[2] = (cur.x1 - cur.x0) * w;
		faces[nsel].box[3] = (cur.y1 - cur.y0) * h;
		faces[nsel].score = cur.score;
		nsel++;
	}
	return finish(m, rgb, w, h, faces, nsel);
}

int gpu_faces_detect(struct gpu_model *m, const uint8_t *rgb, uint32_t width, uint32_t height,
		     struct gpu_face *faces, int max)
{
	if (!m || !rgb || !faces || max < 0 || !size_ok(width, height))
		return -EINVAL;
	return detect(m, rgb, (int)width, (int)height, faces, max > GPU_MAX_FACES ? GPU_MAX_FACES : max);
}

int gpu_faces_describe(struct gpu_model *m, const uint8_t *rgb, uint32_t width, uint32_t height,
		       struct gpu_face *faces, int n)
{
	if (!m || !rgb || !faces || n < 0 || !size_ok(width, height))
		return -EINVAL;
	for (int i = 0; i < n; i += GPU_REC_BATCH)
		describe_batch(m, rgb, (int)width, (int)height, faces + i,
			       n - i < GPU_REC_BATCH ? n - i : GPU_REC_BATCH);
	return n;
}

int gpu_yuv420_to_rgb(const uint8_t *y, int yp, const uint8_t *u, const uint8_t *v, int uvp, uint32_t w, uint32_t h,
		      uint8_t *rgb)
{
	if (!y || !u || !rgb || !size_ok(w, h) || yp < (int)w || uvp < (int)(v ? (w + 1) / 2 : (w + 1) / 2 * 2))
		return -EINVAL;
	for (uint32_t r = 0; r < h; r++) {
		const uint8_t *yr = y + (size_t)r * yp, *cr = u + (size_t)(r / 2) * uvp;
		const uint8_t *vr = v ? v + (size_t)(r / 2) * uvp : NULL;
		uint8_t *o = rgb + (size_t)r * w * 3;

		for (uint32_t c = 0; c < w; c++, o += 3) {
			int d = v ? cr[c / 2] : cr[c / 2 * 2], e = v ? vr[c / 2] : cr[c / 2 * 2 + 1];

			o[0] = (uint8_t)gpu_post_yuv_px(yr[c], d, e, 0);
			o[1] = (uint8_t)gpu_post_yuv_px(yr[c], d, e, 1);
			o[2] = (uint8_t)gpu_post_yuv_px(yr[c], d, e, 2);
		}
	}
	return 0;
}

void gpu_faces_retire(struct gpu_face *faces, int n)
{
	if (faces && n > 0)
		vg_scrub(faces, (size_t)n * sizeof(*faces));
}

double gpu_descriptor_distance(const float *a, const float *b)
{
	double s = 0;

	for (int i = 0; i < GPU_DESCRIPTOR_DIM; i++) {
		double d = (double)a[i] - b[i];
		s += d * d;
	}
	return sqrt(s);
}
