/*
 * The face pipeline's arithmetic between the nets, written once for the CPU pipeline
 * (gpu_faces.c) and the CUDA kernels (gpu/cuda/gpu_cuda_faces.cuh): SSD candidates and NMS, boxes
 * back to image pixels, tiled detection's merge, the clipped and floored crops, landmark positions,
 * the dlib-style alignment rectangle and the quality figures. Every function is plain C that
 * nvcc also compiles for the device (GPU_POST_FN), so both backends take the same decisions from
 * the same numbers: face-api's quirks (face-nets.md §5-7) live here and nowhere else.
 *
 * Costs are per image or per face and bounded: candidates visit GPU_SSD_ANCHORS scores with an
 * insertion sort (tens of candidates per face), NMS is quadratic in the kept faces (at most
 * GPU_MAX_FACES), the sharpness is 148 x 148 grey levels per face.
 *
 * Private to gpu/ and gpu/cuda/. Include gpu_int.h first.
 */
#ifndef GPU_POST_H
#define GPU_POST_H

#include <math.h>
#include <string.h>

#ifdef __CUDACC__
#define GPU_POST_FN __host__ __device__ static inline
#else
#define GPU_POST_FN static inline
#endif

#define GPU_POST_MIN_CONFIDENCE 0.5f   /* face-api's SsdMobilenetv1Options default */
#define GPU_POST_TILE_CANDS 4096       /* tiled detection's candidates: ~30 boxes over 0.5 per face */
#define GPU_POST_TILES_MAX_SIDE 64     /* tile origins along one side: 16384 / (512 - 256) */
#define GPU_POST_CROP 150              /* the descriptor net's input side */

/*
 * Channel CH (0 R, 1 G, 2 B) of a pixel of luma Y and chroma U, V: BT.601 limited range, the
 * range H.264 and H.265 cameras send, in 8.8 fixed point, so that every backend converts a
 * camera's frame to the very same RGB (the CUDA kernels read the planes in place with this).
 */
GPU_POST_FN int gpu_post_yuv_px(int y, int u, int v, int ch)
{
	int c = y - 16, d = u - 128, e = v - 128, r;

	if (ch == 0)
		r = (298 * c + 409 * e + 128) >> 8;
	else if (ch == 1)
		r = (298 * c - 100 * d - 208 * e + 128) >> 8;
	else
		r = (298 * c + 516 * d + 128) >> 8;
	return r < 0 ? 0 : (r > 255 ? 255 : r);
}

/* IoU of two SSD boxes [ymin, xmin, ymax, xmax] (nonMaxSuppression.ts: on min/max corners). */
GPU_POST_FN double gpu_post_ssd_iou(const float *a, const float *b)
{
	/* in double, as C promotes the floats (C++ would pick fminf) */
	double ay0 = fmin((double)a[0], (double)a[2]), ax0 = fmin((double)a[1], (double)a[3]);
	double ay1 = fmax((double)a[0], (double)a[2]), ax1 = fmax((double)a[1], (double)a[3]);
	double by0 = fmin((double)b[0], (double)b[2]), bx0 = fmin((double)b[1], (double)b[3]);
	double by1 = fmax((double)b[0], (double)b[2]), bx1 = fmax((double)b[1], (double)b[3]);
	double aa = (ay1 - ay0) * (ax1 - ax0), ab = (by1 - by0) * (bx1 - bx0);
	double iy0, ix0, iy1, ix1, inter;

	if (aa <= 0 || ab <= 0)
		return 0.0;
	iy0 = fmax(ay0, by0), ix0 = fmax(ax0, bx0), iy1 = fmin(ay1, by1), ix1 = fmin(ax1, bx1);
	inter = fmax(iy1 - iy0, 0.0) * fmax(ix1 - ix0, 0.0);
	return inter / (aa + ab - inter);
}

/* Indices of the scores over MIN_CONF into ORDER, by score, descending and stable (JS's sort is
 * stable): an insertion sort, cheap for the tens of candidates a face gives. Returns how many. */
GPU_POST_FN int gpu_post_candidates(const float *scores, float min_conf, int *order)
{
	int n = 0;

	for (int i = 0; i < GPU_SSD_ANCHORS; i++) {
		int j;

		if (!(scores[i] > min_conf))
			continue;
		for (j = n; j > 0 && scores[order[j - 1]] < scores[i]; j--)
			order[j] = order[j - 1];
		order[j] = i;
		n++;
	}
	return n;
}

/*
 * SsdMobilenetv1.locateFaces on one 512 input made from a whole W x H image (padded bottom/right):
 * candidates, greedy NMS at IoU 0.5, then each kept box clipped to 0..1, scaled back by
 * 512/round(side*512/max) and to pixels, into FACES (zeroed first; box and score only). ORDER is
 * GPU_SSD_ANCHORS ints of scratch. Returns the number of faces, at most MAX.
 */
GPU_POST_FN int gpu_post_ssd_faces(const float *boxes, const float *scores, int *order, int w, int h,
				   struct gpu_face *faces, int max)
{
	int sel[GPU_MAX_FACES];
	int ncand = gpu_post_candidates(scores, GPU_POST_MIN_CONFIDENCE, order), nsel = 0;
	double sc = 512.0 / (double)(w > h ? w : h);
	double rw = floor(w * sc + 0.5), rh = floor(h * sc + 0.5);
	double pad_x = 512.0 / rw, pad_y = 512.0 / rh;

	if (max > GPU_MAX_FACES)
		max = GPU_MAX_FACES;
	for (int c = 0; c < ncand && nsel < max; c++) {
		int idx = order[c], keep = 1;

		for (int j = nsel - 1; j >= 0; j--) {
			if (gpu_post_ssd_iou(boxes + (size_t)idx * 4, boxes + (size_t)sel[j] * 4) > 0.5) {
				keep = 0;
				break;
			}
		}
		if (keep)
			sel[nsel++] = idx;
	}
	for (int i = 0; i < nsel; i++) {
		const float *b = boxes + (size_t)sel[i] * 4;
		double top = fmax(0.0, (double)b[0]) * pad_y, bottom = fmin(1.0, (double)b[2]) * pad_y;
		double left = fmax(0.0, (double)b[1]) * pad_x, right = fmin(1.0, (double)b[3]) * pad_x;
		struct gpu_face *f = &faces[i];

		memset(f, 0, sizeof(*f));
		f->score = scores[sel[i]];
		f->box[0] = left * w;
		f->box[1] = top * h;
		f->box[2] = (right - left) * w;
		f->box[3] = (bottom - top) * h;
	}
	return nsel;
}

/* Box.clipAtImageBorders then floor: the crop face-api slices, x y w h into R. 0 when empty. */
GPU_POST_FN int gpu_post_clip_floor(const double box[4], int w, int h, int r[4])
{
	double x = box[0], y = box[1], right = box[0] + box[2], bottom = box[1] + box[3];
	double cx = fmax(x, 0.0), cy = fmax(y, 0.0);
	double cw = fmin(right - cx, w - cx), ch = fmin(bottom - cy, h - cy);

	r[0] = (int)floor(cx);
	r[1] = (int)floor(cy);
	r[2] = (int)floor(cw);
	r[3] = (int)floor(ch);
	return r[2] > 0 && r[3] > 0 && r[0] < w && r[1] < h && r[0] + r[2] <= w && r[1] + r[3] <= h;
}

/*
 * The landmark net's 136 outputs (x, y in 0..1 of the padded 112 square of CROP) to image pixels,
 * shifted by the unfloored box origin as face-api does (face-nets.md §6).
 */
GPU_POST_FN void gpu_post_landmarks(const float *out136, const int crop[4], struct gpu_face *f)
{
	double s = 112.0 / (double)(crop[2] > crop[3] ? crop[2] : crop[3]);
	double sw = crop[2] * s, sh = crop[3] * s;
	float fsw = (float)sw, fsh = (float)sh;
	float padx = (float)(sw < sh ? fabs(sw - sh) / 2 : 0.0);
	float pady = (float)(sh < sw ? fabs(sw - sh) / 2 : 0.0);

	for (int i = 0; i < GPU_LANDMARKS; i++) {
		float rx = (out136[2 * i] * 112.0f - padx) / fsw;
		float ry = (out136[2 * i + 1] * 112.0f - pady) / fsh;

		f->landmarks[i][0] = (double)rx * crop[2] + f->box[0];
		f->landmarks[i][1] = (double)ry * crop[3] + f->box[1];
	}
}

/* The mean of F's landmarks FROM..TO into C. */
GPU_POST_FN void gpu_post_center(const struct gpu_face *f, int from, int to, double c[2])
{
	double sx = 0, sy = 0;

	for (int i = from; i <= to; i++)
		sx += f->landmarks[i][0], sy += f->landmarks[i][1];
	c[0] = sx / (to - from + 1);
	c[1] = sy / (to - from + 1);
}

/*
 * FaceLandmarks.alignDlib into R (x y w h): size from the eye-mouth distance, ref = centroid of
 * eyes and mouth. CROP_W/CROP_H are the landmark crop's size, which face-api uses as the "image"
 * size in its min() (a no-op for real faces, kept for equality).
 */
GPU_POST_FN void gpu_post_align_rect(const struct gpu_face *f, int crop_w, int crop_h, double r[4])
{
	double l[2], rr[2], mo[2], ref[2], d, size;

	gpu_post_center(f, 36, 41, l);
	gpu_post_center(f, 42, 47, rr);
	gpu_post_center(f, 48, 67, mo);
	d = (hypot(mo[0] - l[0], mo[1] - l[1]) + hypot(mo[0] - rr[0], mo[1] - rr[1])) / 2;
	size = floor(d / 0.45);
	ref[0] = (l[0] + rr[0] + mo[0]) / 3;
	ref[1] = (l[1] + rr[1] + mo[1]) / 3;
	r[0] = floor(fmax(0.0, ref[0] - 0.5 * size));
	r[1] = floor(fmax(0.0, ref[1] - 0.43 * size));
	r[2] = fmin(size, crop_w + r[0]);
	r[3] = fmin(size, crop_h + r[1]);
}

/*
 * The sharpness figure, the variance of the 4-neighbour Laplacian of the grey 150 x 150 crop, in
 * two steps so that a GPU sums the rows in parallel and the total the same way: the sums of
 * row Y (1..148) into *S and *S2, then the rows in order.
 */
GPU_POST_FN double gpu_post_grey(const float *in150, int y, int x)
{
	const float *p = in150 + ((size_t)y * GPU_POST_CROP + x) * 3;

	return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
}

GPU_POST_FN void gpu_post_sharpness_row(const float *in150, int y, double *s, double *s2)
{
	double a = 0, b = 0;

	for (int x = 1; x < GPU_POST_CROP - 1; x++) {
		double v = 4 * gpu_post_grey(in150, y, x) - gpu_post_grey(in150, y - 1, x) -
			   gpu_post_grey(in150, y + 1, x) - gpu_post_grey(in150, y, x - 1) - gpu_post_grey(in150, y, x + 1);

		a += v;
		b += v * v;
	}
	*s = a;
	*s2 = b;
}

/* ROW_S, ROW_S2: the 148 row sums of rows 1..148, in order. */
GPU_POST_FN double gpu_post_sharpness(const double *row_s, const double *row_s2)
{
	const int inner = GPU_POST_CROP - 2;
	double s = 0, s2 = 0;

	for (int y = 0; y < inner; y++) {
		s += row_s[y];
		s2 += row_s2[y];
	}
	s /= (double)inner * inner;
	return s2 / ((double)inner * inner) - s * s;
}

/* Inter-ocular distance and yaw from the landmarks (the sharpness is set apart). */
GPU_POST_FN void gpu_post_quality(struct gpu_face *f)
{
	double l[2], r[2], mid, half;

	gpu_post_center(f, 36, 41, l);
	gpu_post_center(f, 42, 47, r);
	f->quality.interocular_px = hypot(r[0] - l[0], r[1] - l[1]);
	/* nose tip (30) against the eye midpoint, in half inter-ocular units: ~sin(yaw) for a
	 * frontal-scale head; clamped to +-1 before asin */
	mid = (l[0] + r[0]) / 2;
	half = f->quality.interocular_px / 2;
	f->quality.yaw_deg = 0;
	if (half > 0) {
		double t = (f->landmarks[30][0] - mid) / half;

		t = t > 1 ? 1 : (t < -1 ? -1 : t);
		f->quality.yaw_deg = asin(t) * (180.0 / 3.14159265358979323846);
	}
}

/* ---- tiled detection (gpu_faces_run_tiled) --------------------------------------------------- */

/* A detection in image pixels: corners and score. */
struct gpu_post_cand {
	double x0, y0, x1, y1, score;
};

GPU_POST_FN double gpu_post_cand_iou(const struct gpu_post_cand *a, const struct gpu_post_cand *b)
{
	double iw = fmin(a->x1, b->x1) - fmax(a->x0, b->x0), ih = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
	double aa = (a->x1 - a->x0) * (a->y1 - a->y0), ab = (b->x1 - b->x0) * (b->y1 - b->y0);
	double inter;

	if (iw <= 0 || ih <= 0 || aa <= 0 || ab <= 0)
		return 0;
	inter = iw * ih;
	return inter / (aa + ab - inter);
}

/* The share of A's area inside B. */
GPU_POST_FN double gpu_post_cand_inside(const struct gpu_post_cand *a, const struct gpu_post_cand *b)
{
	double iw = fmin(a->x1, b->x1) - fmax(a->x0, b->x0), ih = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
	double aa = (a->x1 - a->x0) * (a->y1 - a->y0);

	return iw > 0 && ih > 0 && aa > 0 ? iw * ih / aa : 0;
}

/* Tile origins along one side: full 512 tiles stepping by STEP, the last one flush with the edge. */
GPU_POST_FN int gpu_post_tile_origins(int side, int step, int *org, int cap)
{
	int n = 0;

	for (int o = 0; n < cap; o += step) {
		if (o + 512 >= side) {
			org[n++] = side - 512;
			break;
		}
		org[n++] = o;
	}
	return n;
}

/*
 * The candidates of the native-resolution tile at (OX, OY) of a W x H frame, appended to C (NC
 * held, room for CAP). A face larger than OVERLAP is the whole-frame pass's (at native resolution
 * the SSD also fires on parts of it), and a box touching a tile edge inside the frame is a cut
 * face that the tile holding it whole reports. Returns the new count.
 */
GPU_POST_FN int gpu_post_tile_cands(const float *boxes, const float *scores, int ox, int oy, int w, int h,
				    int overlap, struct gpu_post_cand *c, int nc, int cap)
{
	for (int a = 0; a < GPU_SSD_ANCHORS && nc < cap; a++) {
		const float *b = boxes + (size_t)a * 4;
		struct gpu_post_cand k;

		if (!(scores[a] > GPU_POST_MIN_CONFIDENCE))
			continue;
		k.y0 = oy + fmax(0.0, (double)b[0]) * 512, k.x0 = ox + fmax(0.0, (double)b[1]) * 512;
		k.y1 = oy + fmin(1.0, (double)b[2]) * 512, k.x1 = ox + fmin(1.0, (double)b[3]) * 512;
		k.score = scores[a];
		if (k.x1 - k.x0 > overlap || k.y1 - k.y0 > overlap)
			continue;
		if ((k.x0 <= ox + 1 && ox > 0) || (k.y0 <= oy + 1 && oy > 0) || (k.x1 >= ox + 511 && ox + 512 < w) ||
		    (k.y1 >= oy + 511 && oy + 512 < h))
			continue;
		c[nc++] = k;
	}
	return nc;
}

/*
 * One NMS over every candidate of a tiled frame, by score (a stable insertion sort: NC <=
 * GPU_POST_TILE_CANDS): IoU 0.5 as face-api, and a box lying mostly (65%) inside a kept one is a
 * part of that face seen by a tile. The kept boxes into FACES (zeroed first; box and score only).
 * Returns how many, at most MAX (and GPU_MAX_FACES).
 */
GPU_POST_FN int gpu_post_tiled_merge(struct gpu_post_cand *c, int nc, int max, struct gpu_face *faces)
{
	const struct gpu_post_cand *sel[GPU_MAX_FACES];
	int nsel = 0;

	if (max > GPU_MAX_FACES)
		max = GPU_MAX_FACES;

	for (int i = 1; i < nc; i++) {
		struct gpu_post_cand t = c[i];
		int j = i;

		for (; j > 0 && c[j - 1].score < t.score; j--)
			c[j] = c[j - 1];
		c[j] = t;
	}
	for (int i = 0; i < nc && nsel < max; i++) {
		int keep = 1;

		for (int j = 0; j < nsel && keep; j++)
			keep = gpu_post_cand_iou(&c[i], sel[j]) <= 0.5 && gpu_post_cand_inside(&c[i], sel[j]) <= 0.65;
		if (keep)
			sel[nsel++] = &c[i];
	}
	for (int i = 0; i < nsel; i++) {
		memset(&faces[i], 0, sizeof(faces[i]));
		faces[i].box[0] = sel[i]->x0;
		faces[i].box[1] = sel[i]->y0;
		faces[i].box[2] = sel[i]->x1 - sel[i]->x0;
		faces[i].box[3] = sel[i]->y1 - sel[i]->y0;
		faces[i].score = sel[i]->score;
	}
	return nsel;
}

#endif /* GPU_POST_H */
