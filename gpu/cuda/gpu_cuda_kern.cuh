/*
 * The face nets' element kernels, written once for two places: each functor below computes one
 * output element, `__host__ __device__`, so the CUDA backend launches it as a kernel (vgk_each)
 * and the host-emulation executor runs the very same code in a loop on the CPU. That second use
 * is how the kernels are checked where there is no GPU (tests/gpu/cuda/test_cuda_nets_host.c): run on
 * the host, they must equal gpu/'s reference kernels bit for bit.
 *
 * Bit equality needs the reference's rounding, op by op: every sum is accumulated in the
 * reference's order (ky, kx, ci for a convolution), and on the device the multiply and the add are
 * the round-to-nearest intrinsics, which nvcc never contracts into an FMA. The CPU's reference is
 * built without FMA instructions (no -march), so both sides round every product and every sum.
 *
 * Storage type T is float or __half (the fast mode): elements are loaded into float, computed in
 * float and rounded to T when stored, as cuDNN's pseudo-half configuration does.
 *
 * Layouts are gpu/'s: NHWC activations, batch NB images back to back; HWIO filters (depthwise:
 * [k][k][C]); per-output-channel bias, mul and add, any of them NULL.
 */
#ifndef GPU_CUDA_KERN_CUH
#define GPU_CUDA_KERN_CUH

#include <cuda_fp16.h>
#include <float.h>
#include <stddef.h>

extern "C" {
#include "../gpu_int.h"
}
#include "../gpu_post.h"

#define VGK_HD __host__ __device__ __forceinline__

/* Activations (gpu_int.h's enum gpu_act, repeated so that this header stands alone). */
enum { VGK_ACT_NONE = 0, VGK_ACT_RELU, VGK_ACT_RELU6, VGK_ACT_LEAKY };

VGK_HD float vgk_mul(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fmul_rn(a, b);
#else
	return a * b;
#endif
}

VGK_HD float vgk_add(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fadd_rn(a, b);
#else
	return a + b;
#endif
}

VGK_HD float vgk_div(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fdiv_rn(a, b);
#else
	return a / b;
#endif
}

VGK_HD float vgk_ld(const float *p) { return *p; }
VGK_HD float vgk_ld(const __half *p) { return __half2float(*p); }
VGK_HD void vgk_st(float *p, float v) { *p = v; }
VGK_HD void vgk_st(__half *p, float v) { *p = __float2half_rn(v); }

/* gpu_layers_ref.c's act_apply, op for op */
VGK_HD float vgk_act(float v, int act)
{
	if (act == VGK_ACT_RELU)
		return v > 0.0f ? v : 0.0f;
	if (act == VGK_ACT_RELU6)
		return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
	if (act == VGK_ACT_LEAKY) {
		float mn = vgk_mul(v, 0.10000000149011612f), r = vgk_add(v, -mn);
		return vgk_add(r > 0.0f ? r : 0.0f, mn);
	}
	return v;
}

/* TF's output size and leading pad (gpu_out_dim). */
VGK_HD void vgk_out_dim(int in, int k, int s, int same, int *out, int *pad_before)
{
	if (!same) {
		*out = in >= k ? (in - k) / s + 1 : 0;
		*pad_before = 0;
	} else {
		int o = (in + s - 1) / s;
		int total = (o - 1) * s + k - in;

		*out = o;
		*pad_before = total > 0 ? total / 2 : 0;
	}
}

/* Where flat index I of an NB x H x W x C tensor (NHWC) is. */
struct vgk_at {
	size_t n;
	int y, x, c;
};

VGK_HD struct vgk_at vgk_nhwc(size_t i, int h, int w, int c)
{
	size_t px = i / (size_t)c;
	struct vgk_at a = {px / ((size_t)w * h), (int)((px / (size_t)w) % (size_t)h), (int)(px % (size_t)w),
			   (int)(i % (size_t)c)};

	return a;
}

/*
 * The per-channel tail of a convolution: ((v + bias) * mul + add), the activation, then, where
 * RES is given, relu(v + res) (the residual blocks' merge). One function, so that the direct
 * kernel and the epilogue after cuDNN agree.
 */
VGK_HD float vgk_tail(float v, int co, const float *bias, const float *mul, const float *add, int act)
{
	if (bias)
		v = vgk_add(v, bias[co]);
	if (mul)
		v = vgk_mul(v, mul[co]);
	if (add)
		v = vgk_add(v, add[co]);
	return vgk_act(v, act);
}

/* Direct convolution (plain or depthwise), one output element per call: the fp32 check mode. */
template <class T> struct vgk_conv {
	const T *in;
	const float *filt, *bias, *mul, *add;
	const T *res;   /* NULL, or out = relu(conv + res) */
	T *out;
	int h, w, cin, cout, k, stride, pt, pl, oh, ow, act, depthwise;

	VGK_HD void operator()(size_t i) const
	{
		struct vgk_at o = vgk_nhwc(i, oh, ow, cout);
		int co = o.c, ox = o.x, oy = o.y;
		const T *img = in + o.n * (size_t)h * w * cin;
		float acc = 0.0f, v;

		for (int ky = 0; ky < k; ky++) {
			int iy = oy * stride - pt + ky;

			if (iy < 0 || iy >= h)
				continue;
			for (int kx = 0; kx < k; kx++) {
				int ix = ox * stride - pl + kx;
				const T *ip;

				if (ix < 0 || ix >= w)
					continue;
				ip = img + ((size_t)iy * w + ix) * cin;
				if (depthwise) {
					acc = vgk_add(acc, vgk_mul(vgk_ld(ip + co), filt[((size_t)ky * k + kx) * cin + co]));
					continue;
				}
				for (int ci = 0; ci < cin; ci++) {
					const float *wp = filt + (((size_t)ky * k + kx) * cin + ci) * cout + co;

					acc = vgk_add(acc, vgk_mul(vgk_ld(ip + ci), *wp));
				}
			}
		}
		v = vgk_tail(acc, co, bias, mul, add, act);
		if (res) {
			v = vgk_add(v, vgk_ld(res + i));
			v = v > 0.0f ? v : 0.0f;
		}
		vgk_st(out + i, v);
	}
};

/* The tail alone, in place, after a convolution cuDNN computed without it. */
template <class T> struct vgk_epilogue {
	T *out;
	const float *bias;   /* folded: (bias * mul + add), the mul folded into the filter */
	const T *res;
	int cout, act;

	VGK_HD void operator()(size_t i) const
	{
		float v = vgk_tail(vgk_ld(out + i), (int)(i % (size_t)cout), bias, NULL, NULL, act);

		if (res) {
			v = vgk_add(v, vgk_ld(res + i));
			v = v > 0.0f ? v : 0.0f;
		}
		vgk_st(out + i, v);
	}
};

/* Zero padding for cuDNN, whose padding is symmetric: TF's 'same' at stride 2 on an even input
 * pads only bottom/right, so such a layer gets an explicitly padded copy and no padding. */
template <class T> struct vgk_pad {
	const T *in;
	T *out;
	int h, w, c, pt, pl, ph, pw;   /* out is ph x pw, the input at (pt, pl) inside */

	VGK_HD void operator()(size_t i) const
	{
		struct vgk_at o = vgk_nhwc(i, ph, pw, c);
		int x = o.x - pl, y = o.y - pt;

		if (y < 0 || y >= h || x < 0 || x >= w)
			vgk_st(out + i, 0.0f);
		else
			out[i] = in[((o.n * h + y) * w + x) * c + o.c];
	}
};

/* Max (pads are -FLT_MAX) or average (pads ignored) pooling, pool_ref's loop. */
template <class T> struct vgk_pool {
	const T *in;
	T *out;
	int h, w, c, k, s, pt, pl, oh, ow, is_max;

	VGK_HD void operator()(size_t i) const
	{
		struct vgk_at o = vgk_nhwc(i, oh, ow, c);
		int ch = o.c, ox = o.x, oy = o.y;
		const T *img = in + o.n * (size_t)h * w * c;
		float acc = is_max ? -FLT_MAX : 0.0f;
		int cnt = 0;

		for (int ky = 0; ky < k; ky++) {
			int iy = oy * s - pt + ky;

			if (iy < 0 || iy >= h)
				continue;
			for (int kx = 0; kx < k; kx++) {
				int ix = ox * s - pl + kx;
				float v;

				if (ix < 0 || ix >= w)
					continue;
				v = vgk_ld(img + ((size_t)iy * w + ix) * c + ch);
				if (is_max)
					acc = v > acc ? v : acc;
				else
					acc = vgk_add(acc, v);
				cnt++;
			}
		}
		vgk_st(out + i, is_max ? acc : (cnt ? vgk_div(acc, (float)cnt) : 0.0f));
	}
};

/* The nets' input normalisation on raw 0..255 pixels: x/127.5 - 1 (SSD, MEAN NULL) or
 * (x - mean[c]) / 255 (landmarks, recognition). */
template <class T> struct vgk_normalize {
	const float *in;
	T *out;
	const float *mean;   /* 3 values, or NULL */

	VGK_HD void operator()(size_t i) const
	{
		if (!mean)
			vgk_st(out + i, vgk_add(vgk_div(in[i], 127.5f), -1.0f));
		else
			vgk_st(out + i, vgk_div(vgk_add(in[i], -mean[i % 3]), 255.0f));
	}
};

/* out = relu(a + (b + (c + d))) over the first NIN of A..D (the dense blocks' merges). */
template <class T> struct vgk_sum_relu {
	const T *a, *b, *c, *d;
	T *out;
	int nin;

	VGK_HD void operator()(size_t i) const
	{
		const T *src[4] = {a, b, c, d};
		float v = vgk_ld(src[nin - 1] + i);

		for (int j = nin - 2; j >= 0; j--)
			v = vgk_add(vgk_ld(src[j] + i), v);
		vgk_st(out + i, v > 0.0f ? v : 0.0f);
	}
};

/*
 * The recognition net's down-block merge: out = relu((pooled skip || zero channels) + b), b
 * (BH x BW) padded with a zero row and column when the skip (PH x PW) is larger (face-nets.md §4).
 */
template <class T> struct vgk_rec_merge {
	const T *pool, *b;
	T *out;
	int ph, pw, c, bh, bw, co;

	VGK_HD void operator()(size_t i) const
	{
		struct vgk_at o = vgk_nhwc(i, ph, pw, co);
		int k = o.c, x = o.x, y = o.y;
		float s = k < c ? vgk_ld(pool + ((o.n * ph + y) * pw + x) * c + k) : 0.0f;
		float bv = y < bh && x < bw ? vgk_ld(b + ((o.n * bh + y) * bw + x) * co + k) : 0.0f;
		float v = vgk_add(s, bv);

		vgk_st(out + i, v > 0.0f ? v : 0.0f);
	}
};

/* Mean over H x W per channel: the recognition head's first half. OUT is float, NB x C. */
template <class T> struct vgk_mean_hw {
	const T *in;
	float *out;
	int hw, c;

	VGK_HD void operator()(size_t i) const
	{
		int k = (int)(i % (size_t)c);
		size_t n = i / (size_t)c;
		float s = 0.0f;

		for (int j = 0; j < hw; j++)
			s = vgk_add(s, vgk_ld(in + (n * hw + j) * c + k));
		out[i] = vgk_div(s, (float)hw);
	}
};

/* out = in . W (+ bias): the heads' fully connected layers, W [IN][OUT], one output per call. */
template <class T> struct vgk_fc {
	const T *in;
	const float *wt, *bias;
	float *out;
	int nin, nout;

	VGK_HD void operator()(size_t i) const
	{
		int j = (int)(i % (size_t)nout);
		size_t n = i / (size_t)nout;
		float s = 0.0f;

		for (int k = 0; k < nin; k++)
			s = vgk_add(s, vgk_mul(vgk_ld(in + n * nin + k), wt[(size_t)k * nout + j]));
		if (bias)
			s = vgk_add(s, bias[j]);
		out[i] = s;
	}
};

/*
 * SSD box decoding (outputLayer.ts, gpu_ssd_forward's loop) for image N's anchor A, reading the
 * six predictors' outputs where the convolutions left them: level L holds NB x CELLS[L] anchors.
 */
#define VGK_SSD_LEVELS 6
#define VGK_SSD_ANCHORS 5118
template <class T> struct vgk_ssd_decode {
	const T *box[VGK_SSD_LEVELS], *cls[VGK_SSD_LEVELS];
	int count[VGK_SSD_LEVELS];   /* anchors per image at each level: 3072, 1536, 384, 96, 24, 6 */
	const float *anchors;        /* [5118][4] ymin xmin ymax xmax */
	float *boxes, *scores;       /* NB x 5118 x 4, NB x 5118 */

	VGK_HD void operator()(size_t i) const
	{
		int a = (int)(i % VGK_SSD_ANCHORS), lvl = 0, local = a;
		size_t n = i / VGK_SSD_ANCHORS;

		while (lvl < VGK_SSD_LEVELS - 1 && local >= count[lvl])
			local -= count[lvl++];
		{
			const T *r = box[lvl] + (n * count[lvl] + local) * 4;
			const float *an = anchors + (size_t)a * 4;
			float r0 = vgk_ld(r), r1 = vgk_ld(r + 1), r2 = vgk_ld(r + 2), r3 = vgk_ld(r + 3);
			float s0 = vgk_add(an[2], -an[0]), s1 = vgk_add(an[3], -an[1]);
			float c0 = vgk_add(an[0], vgk_div(s0, 2.0f)), c1 = vgk_add(an[1], vgk_div(s1, 2.0f));
			float div0 = vgk_div(vgk_mul(expf(vgk_div(r2, 5.0f)), s0), 2.0f);
			float add0 = vgk_add(vgk_mul(vgk_div(r0, 10.0f), s0), c0);
			float div1 = vgk_div(vgk_mul(expf(vgk_div(r3, 5.0f)), s1), 2.0f);
			float add1 = vgk_add(vgk_mul(vgk_div(r1, 10.0f), s1), c1);
			float logit = vgk_ld(cls[lvl] + (n * count[lvl] + local) * 3 + 1);

			boxes[i * 4 + 0] = vgk_add(add0, -div0);
			boxes[i * 4 + 1] = vgk_add(add1, -div1);
			boxes[i * 4 + 2] = vgk_add(add0, div0);
			boxes[i * 4 + 3] = vgk_add(add1, div1);
			scores[i] = vgk_div(1.0f, vgk_add(1.0f, expf(-logit)));
		}
	}
};

/* ==== preprocessing straight from decoded frames ============================================== */

/* A decoded frame as the decoder leaves it: packed RGB24, I420 (Y, U, V planes) or NV12 (Y, UV). */
enum { VGK_RGB24 = 0, VGK_I420 = 1, VGK_NV12 = 2 };
struct vgk_frame {
	const unsigned char *plane[3];
	int pitch[3];
	int fmt, w, h;
};

/*
 * Channel CH (0 R, 1 G, 2 B) of pixel (X, Y): BT.601 limited range in 8.8 fixed point
 * (gpu_post_yuv_px), chroma of the 2x2 block the pixel is in (the integer arithmetic makes host and
 * device agree exactly).
 */
VGK_HD int vgk_frame_px(const struct vgk_frame &f, int x, int y, int ch)
{
	int d, e;

	if (f.fmt == VGK_RGB24)
		return f.plane[0][(size_t)y * f.pitch[0] + (size_t)x * 3 + ch];
	if (f.fmt == VGK_I420) {
		d = f.plane[1][(size_t)(y / 2) * f.pitch[1] + x / 2];
		e = f.plane[2][(size_t)(y / 2) * f.pitch[2] + x / 2];
	} else {
		const unsigned char *uv = f.plane[1] + (size_t)(y / 2) * f.pitch[1] + (size_t)(x / 2) * 2;

		d = uv[0];
		e = uv[1];
	}
	return gpu_post_yuv_px(f.plane[0][(size_t)y * f.pitch[0] + x], d, e, ch);
}

/*
 * face-api's toBatchTensor (gpu_to_batch_ref, op for op) on the region (X0, Y0, W, H) of a decoded
 * frame: pad to a square with zeros (CENTER: centred as face-api rounds it; else bottom/right),
 * bilinear resize to SIZE x SIZE. One output value (row, column, channel) per call: colour
 * conversion, crop, pad and resize in one pass, with no RGB copy of the frame.
 */
struct vgk_to_batch {
	struct vgk_frame f;
	float *out;
	int x0, y0, w, h, size, center;

	VGK_HD float px(int py, int pxo, int y, int x, int ch) const
	{
		int iy = y - py, ix = x - pxo;

		if (iy < 0 || iy >= h || ix < 0 || ix >= w)
			return 0.0f;
		return (float)vgk_frame_px(f, x0 + ix, y0 + iy, ch);
	}
	VGK_HD void operator()(size_t i) const
	{
		int ch = (int)(i % 3), c = (int)((i / 3) % (size_t)size), r = (int)(i / 3 / (size_t)size);
		int side = w > h ? w : h, diff = w > h ? w - h : h - w, before = 0;
		float scale, yin, xin, yl, xl, tl, tr, bl, br, top, bot;
		int y0i, y1i, x0i, x1i, py, pxo;

		if (center)
			before = diff - (int)floor(diff * 0.5 + 0.5);
		py = w > h ? before : 0;
		pxo = w > h ? 0 : before;
		scale = vgk_div((float)side, (float)size);
		yin = vgk_mul((float)r, scale);
		y0i = (int)floorf(yin);
		y1i = (int)ceilf(yin);
		yl = vgk_add(yin, -(float)y0i);
		y1i = y1i > side - 1 ? side - 1 : y1i;
		xin = vgk_mul((float)c, scale);
		x0i = (int)floorf(xin);
		x1i = (int)ceilf(xin);
		xl = vgk_add(xin, -(float)x0i);
		x1i = x1i > side - 1 ? side - 1 : x1i;
		tl = px(py, pxo, y0i, x0i, ch);
		tr = px(py, pxo, y0i, x1i, ch);
		bl = px(py, pxo, y1i, x0i, ch);
		br = px(py, pxo, y1i, x1i, ch);
		top = vgk_add(tl, vgk_mul(vgk_add(tr, -tl), xl));
		bot = vgk_add(bl, vgk_mul(vgk_add(br, -bl), xl));
		out[i] = vgk_add(top, vgk_mul(vgk_add(bot, -top), yl));
	}
};

#endif /* GPU_CUDA_KERN_CUH */
