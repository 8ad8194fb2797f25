/*
 * The face pipeline's steps between the nets, as element functors for the executors (the same
 * code on a GPU and in the host emulation): detector inputs and crops straight from decoded
 * frames, detection post-processing per frame, landmark positions and alignment per face, the
 * quality figures, the descriptors gathered for the matcher, and the evidence crop. The decisions
 * are gpu_post.h's, so a batch on the device finds, crops and drops exactly the faces the CPU
 * pipeline (gpu_faces.c) does on the same pixels.
 *
 * Costs (per batch): the detector inputs and crops are one thread per output value; detection
 * post-processing is one thread per frame over its inputs' 5118 scores each (a few tens of
 * microseconds a frame on an H100 by the instruction count; 19 inputs a tiled 1080p frame);
 * landmarks and alignment one thread per face; the sharpness one thread per crop row, then one
 * per face.
 */
#ifndef GPU_CUDA_FACES_CUH
#define GPU_CUDA_FACES_CUH

#include "gpu_cuda_kern.cuh"

extern "C" {
#include "../gpu_int.h"
}
#include "../gpu_post.h"

/* A region of a frame of the batch that a net reads: FRAME's x y w h. OK 0: an empty crop (the
 * net's input stays zero and the face is dropped, as the CPU drops it). */
struct vgk_region {
	int frame, x, y, w, h, ok;
};

/* face-api's toBatchTensor (vgk_to_batch) of many regions: output slot i / (SIZE*SIZE*3) reads
 * REGIONS[slot] of FRAMES. */
struct vgk_to_batch_regions {
	const struct vgk_frame *frames;
	const struct vgk_region *regions;
	float *out;
	int size, center;

	VGK_HD void operator()(size_t i) const
	{
		size_t per = (size_t)size * size * 3, slot = i / per;
		const struct vgk_region &r = regions[slot];

		if (!r.ok) {
			out[i] = 0.0f;
			return;
		}
		const struct vgk_to_batch k = {.f = frames[r.frame], .out = out + slot * per, .x0 = r.x, .y0 = r.y,
					       .w = r.w, .h = r.h, .size = size, .center = center};
		k(i - slot * per);
	}
};

/* A frame's detector inputs: FIRST (its whole frame, downscaled), then N - 1 native tiles. */
struct vgk_det {
	int first, n, w, h;
};

/*
 * Detection post-processing of one frame (gpu_faces_run, or gpu_faces_run_tiled when it has
 * tiles): the SSD's boxes and scores of its inputs to at most MAXF faces (box and score) in its
 * slots of FACES, their count in NFACES. ORDER and CANDS are the frame's scratch.
 */
struct vgk_detect_frame {
	const struct vgk_det *det;
	const struct vgk_region *inputs;
	const float *boxes, *scores;   /* per input: GPU_SSD_ANCHORS x 4, GPU_SSD_ANCHORS */
	int *order;                    /* per frame: GPU_SSD_ANCHORS */
	struct gpu_post_cand *cands;   /* per frame: GPU_POST_TILE_CANDS */
	struct gpu_face *faces;        /* per frame: MAXF */
	int *nfaces;
	int maxf, overlap;

	VGK_HD void operator()(size_t fi) const
	{
		const struct vgk_det &d = det[fi];
		const float *b = boxes + (size_t)d.first * GPU_SSD_ANCHORS * 4;
		const float *s = scores + (size_t)d.first * GPU_SSD_ANCHORS;
		struct gpu_face *f = faces + fi * (size_t)maxf;
		struct gpu_post_cand *c = cands + fi * (size_t)GPU_POST_TILE_CANDS;
		int n = gpu_post_ssd_faces(b, s, order + fi * (size_t)GPU_SSD_ANCHORS, d.w, d.h, f, maxf), nc = 0;

		if (d.n > 1) {   /* tiled: the whole frame's faces, then the tiles' boxes, one NMS */
			for (int i = 0; i < n && nc < GPU_POST_TILE_CANDS; i++, nc++)
				c[nc] = (struct gpu_post_cand){f[i].box[0], f[i].box[1], f[i].box[0] + f[i].box[2],
							       f[i].box[1] + f[i].box[3], f[i].score};
			for (int t = 1; t < d.n; t++) {
				const struct vgk_region &r = inputs[d.first + t];

				nc = gpu_post_tile_cands(boxes + (size_t)(d.first + t) * GPU_SSD_ANCHORS * 4,
							 scores + (size_t)(d.first + t) * GPU_SSD_ANCHORS, r.x, r.y, d.w,
							 d.h, overlap, c, nc, GPU_POST_TILE_CANDS);
			}
			n = gpu_post_tiled_merge(c, nc, maxf, f);
			memset(c, 0, (size_t)nc * sizeof(*c));
		}
		nfaces[fi] = n;
	}
};

/* The landmark crop of the batch's face J (its slot SLOT[J] in FACES, frame SLOT[J] / MAXF): the
 * box clipped and floored (gpu_faces.c's finish()). */
struct vgk_lm_region {
	const struct gpu_face *faces;
	const int *slot;
	const struct vgk_frame *frames;
	struct vgk_region *out;
	int maxf;

	VGK_HD void operator()(size_t j) const
	{
		int fr = slot[j] / maxf, r[4];
		int ok = gpu_post_clip_floor(faces[slot[j]].box, frames[fr].w, frames[fr].h, r);

		out[j] = (struct vgk_region){fr, r[0], r[1], r[2], r[3], ok};
	}
};

/* The landmark net's outputs of face J to image pixels, its alignment rectangle, and the
 * descriptor crop REC[J] (describe_batch()). */
struct vgk_landmarks {
	const float *out136;
	const struct vgk_region *lm;
	struct gpu_face *faces;
	const int *slot;
	const struct vgk_frame *frames;
	struct vgk_region *rec;

	VGK_HD void operator()(size_t j) const
	{
		const struct vgk_region &L = lm[j];
		struct gpu_face *f = &faces[slot[j]];
		int crop[4] = {L.x, L.y, L.w, L.h}, r[4], ok;

		if (!L.ok) {
			rec[j] = (struct vgk_region){L.frame, 0, 0, 0, 0, 0};
			return;
		}
		gpu_post_landmarks(out136 + j * 136, crop, f);
		gpu_post_align_rect(f, L.w, L.h, f->align);
		ok = gpu_post_clip_floor(f->align, frames[L.frame].w, frames[L.frame].h, r);
		rec[j] = (struct vgk_region){L.frame, r[0], r[1], r[2], r[3], ok};
	}
};

#define VGK_SHARP_ROWS (GPU_POST_CROP - 2)

/* The sharpness sums of row Y of crop J's 150 x 150 input (one call per crop row). */
struct vgk_sharp_rows {
	const float *in150;
	const struct vgk_region *rec;
	double *rows;   /* per crop: VGK_SHARP_ROWS sums, then VGK_SHARP_ROWS sums of squares */

	VGK_HD void operator()(size_t i) const
	{
		size_t j = i / VGK_SHARP_ROWS;
		int y = (int)(i % VGK_SHARP_ROWS) + 1;
		double *r = rows + j * 2 * VGK_SHARP_ROWS;

		if (!rec[j].ok) {
			r[y - 1] = r[VGK_SHARP_ROWS + y - 1] = 0;
			return;
		}
		gpu_post_sharpness_row(in150 + j * GPU_POST_CROP * GPU_POST_CROP * 3, y, &r[y - 1],
				       &r[VGK_SHARP_ROWS + y - 1]);
	}
};

/* Face J's quality figures, once its rows are summed. */
struct vgk_quality {
	struct gpu_face *faces;
	const int *slot;
	const struct vgk_region *rec;
	const double *rows;

	VGK_HD void operator()(size_t j) const
	{
		struct gpu_face *f = &faces[slot[j]];
		const double *r = rows + j * 2 * VGK_SHARP_ROWS;

		if (!rec[j].ok)
			return;
		f->quality.sharpness = gpu_post_sharpness(r, r + VGK_SHARP_ROWS);
		gpu_post_quality(f);
	}
};

/* Rows IDX[i / D] of SRC (N x D) into OUT, back to back: the descriptors the matcher scans. */
struct vgk_gather {
	const float *src;
	const int *idx;
	float *out;
	int d;

	VGK_HD void operator()(size_t i) const { out[i] = src[(size_t)idx[i / (size_t)d] * d + i % (size_t)d]; }
};

/* The evidence crop: W x H RGB pixels sampled nearest, every STEP pixels from (X0, Y0) of F, as
 * vigild's crop_face() samples a host frame. */
struct vgk_crop_rgb {
	struct vgk_frame f;
	unsigned char *out;
	int x0, y0, w;
	double step;

	VGK_HD void operator()(size_t i) const
	{
		int ch = (int)(i % 3), x = (int)(i / 3 % (size_t)w), y = (int)(i / 3 / (size_t)w);

		out[i] = (unsigned char)vgk_frame_px(f, x0 + (int)(x * step), y0 + (int)(y * step), ch);
	}
};

#endif /* GPU_CUDA_FACES_CUH */
