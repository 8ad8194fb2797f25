/*
 * The reference layer kernels: plain C, NHWC, float32, batch 1, with TF's padding rules
 * (face-nets.md §3). Every faster kernel is checked against these (tests/gpu/test_layers.c
 * checks these against hand-worked cases). They call nothing they check: gpu_conv.c is where a
 * layer goes to oneDNN or here.
 *
 * The convolution keeps the output channel innermost so that the compiler vectorises the
 * multiply-add over Cout (HWIO filters put Cout contiguous): about 25 GFLOP/s on one core at -O3
 * without -march (the recognition net, 0.54 GFLOP, in 20-22 ms; SSD 512 in 280 ms; measured on
 * the 2-core AVX-512 dev VM by tests/gpu/bench_facenet.c). oneDNN does it 6x faster.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "gpu_int.h"

void gpu_out_dim(int in, int k, int s, enum gpu_pad pad, int *out, int *pad_before)
{
	if (pad == GPU_PAD_VALID) {
		*out = in >= k ? (in - k) / s + 1 : 0;
		*pad_before = 0;
	} else {
		int o = (in + s - 1) / s;
		int total = (o - 1) * s + k - in;

		*out = o;
		*pad_before = total > 0 ? total / 2 : 0;
	}
}

static inline float act_apply(float v, enum gpu_act act)
{
	if (act == GPU_ACT_RELU)
		return v > 0.0f ? v : 0.0f;
	if (act == GPU_ACT_RELU6)
		return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
	if (act == GPU_ACT_LEAKY) {   /* tinyYolov2/leaky.ts: relu(x - 0.1x) + 0.1x */
		float mn = v * 0.10000000149011612f, r = v - mn;
		return (r > 0.0f ? r : 0.0f) + mn;
	}
	return v;
}

void gpu_conv_out_dims(const struct gpu_conv *c, int h, int w, int *oh, int *ow, int pad[4])
{
	if (c->pad == GPU_PAD_EXPLICIT) {
		int eh = h + c->pads[0] + c->pads[2] - c->k, ew = w + c->pads[1] + c->pads[3] - c->k;

		*oh = eh >= 0 ? eh / c->stride + 1 : 0;
		*ow = ew >= 0 ? ew / c->stride + 1 : 0;
		memcpy(pad, c->pads, 4 * sizeof(int));
		return;
	}
	gpu_out_dim(h, c->k, c->stride, c->pad, oh, &pad[0]);
	gpu_out_dim(w, c->k, c->stride, c->pad, ow, &pad[1]);
	pad[2] = c->pad == GPU_PAD_VALID ? 0 : (*oh - 1) * c->stride + c->k - h - pad[0];
	pad[3] = c->pad == GPU_PAD_VALID ? 0 : (*ow - 1) * c->stride + c->k - w - pad[1];
}

/* The convolution on an OH x OW output whose window starts PT rows above and PL columns left. */
static void conv2d_core(const float *restrict in, int h, int w, int cin, const float *restrict filt,
			int kh, int kw, int cout, int stride, int pt, int pl, int oh, int ow,
			const float *bias, const float *scale_w, const float *scale_b, enum gpu_act act,
			float *restrict out)
{
	for (int oy = 0; oy < oh; oy++) {
		for (int ox = 0; ox < ow; ox++) {
			float *restrict o = out + ((size_t)oy * ow + ox) * cout;

			for (int co = 0; co < cout; co++)
				o[co] = 0.0f;
			for (int ky = 0; ky < kh; ky++) {
				int iy = oy * stride - pt + ky;

				if (iy < 0 || iy >= h)
					continue;
				for (int kx = 0; kx < kw; kx++) {
					int ix = ox * stride - pl + kx;
					const float *ip;
					const float *wp;

					if (ix < 0 || ix >= w)
						continue;
					ip = in + ((size_t)iy * w + ix) * cin;
					wp = filt + ((size_t)ky * kw + kx) * cin * cout;
					for (int ci = 0; ci < cin; ci++) {
						const float a = ip[ci];
						const float *restrict wr = wp + (size_t)ci * cout;

						for (int co = 0; co < cout; co++)
							o[co] += a * wr[co];
					}
				}
			}
			for (int co = 0; co < cout; co++) {
				float v = o[co];

				if (bias)
					v += bias[co];
				if (scale_w)
					v *= scale_w[co];
				if (scale_b)
					v += scale_b[co];
				o[co] = act_apply(v, act);
			}
		}
	}
}

void gpu_conv2d_ref(const float *restrict in, int h, int w, int cin, const float *restrict filt,
		    int kh, int kw, int cout, int stride, enum gpu_pad pad, const float *bias,
		    const float *scale_w, const float *scale_b, enum gpu_act act, float *restrict out)
{
	int oh, ow, pt, pl;

	gpu_out_dim(h, kh, stride, pad, &oh, &pt);
	gpu_out_dim(w, kw, stride, pad, &ow, &pl);
	conv2d_core(in, h, w, cin, filt, kh, kw, cout, stride, pt, pl, oh, ow, bias, scale_w, scale_b,
		    act, out);
}

static void dwconv2d_core(const float *restrict in, int h, int w, int c, const float *restrict filt,
			  int k, int stride, int pt, int pl, int oh, int ow, float *restrict out)
{
	for (int oy = 0; oy < oh; oy++) {
		for (int ox = 0; ox < ow; ox++) {
			float *restrict o = out + ((size_t)oy * ow + ox) * c;

			for (int ch = 0; ch < c; ch++)
				o[ch] = 0.0f;
			for (int ky = 0; ky < k; ky++) {
				int iy = oy * stride - pt + ky;

				if (iy < 0 || iy >= h)
					continue;
				for (int kx = 0; kx < k; kx++) {
					int ix = ox * stride - pl + kx;
					const float *restrict ip;
					const float *restrict wp;

					if (ix < 0 || ix >= w)
						continue;
					ip = in + ((size_t)iy * w + ix) * c;
					wp = filt + ((size_t)ky * k + kx) * c;
					for (int ch = 0; ch < c; ch++)
						o[ch] += ip[ch] * wp[ch];
				}
			}
		}
	}
}

void gpu_dwconv2d_ref(const float *restrict in, int h, int w, int c, const float *restrict filt,
		      int k, int stride, enum gpu_pad pad, float *restrict out)
{
	int oh, ow, pt, pl;

	gpu_out_dim(h, k, stride, pad, &oh, &pt);
	gpu_out_dim(w, k, stride, pad, &ow, &pl);
	dwconv2d_core(in, h, w, c, filt, k, stride, pt, pl, oh, ow, out);
}

static void pool_ref(const float *in, int h, int w, int c, int k, int s, enum gpu_pad pad,
		     int is_max, float *out)
{
	int oh, ow, pt, pl;

	gpu_out_dim(h, k, s, pad, &oh, &pt);
	gpu_out_dim(w, k, s, pad, &ow, &pl);
	for (int oy = 0; oy < oh; oy++) {
		for (int ox = 0; ox < ow; ox++) {
			float *o = out + ((size_t)oy * ow + ox) * c;

			for (int ch = 0; ch < c; ch++) {
				float acc = is_max ? -FLT_MAX : 0.0f;
				int n = 0;

				for (int ky = 0; ky < k; ky++) {
					int iy = oy * s - pt + ky;

					if (iy < 0 || iy >= h)
						continue;
					for (int kx = 0; kx < k; kx++) {
						int ix = ox * s - pl + kx;
						float v;

						if (ix < 0 || ix >= w)
							continue;
						v = in[((size_t)iy * w + ix) * c + ch];
						if (is_max)
							acc = v > acc ? v : acc;
						else
							acc += v;
						n++;
					}
				}
				o[ch] = is_max ? acc : (n ? acc / (float)n : 0.0f);
			}
		}
	}
}

void gpu_maxpool_ref(const float *in, int h, int w, int c, int k, int s, enum gpu_pad pad, float *out)
{
	pool_ref(in, h, w, c, k, s, pad, 1, out);
}

void gpu_avgpool_ref(const float *in, int h, int w, int c, int k, int s, enum gpu_pad pad, float *out)
{
	pool_ref(in, h, w, c, k, s, pad, 0, out);
}

/* One channel value of the zero-padded square at (y, x), offsets (py, px) of the image inside. */
static inline float padded_px(const uint8_t *rgb, int w, int h, size_t stride, int py, int px,
			      int y, int x, int ch)
{
	int iy = y - py, ix = x - px;

	if (iy < 0 || iy >= h || ix < 0 || ix >= w)
		return 0.0f;
	return (float)rgb[(size_t)iy * stride + (size_t)ix * 3 + ch];
}

void gpu_to_batch_ref(const uint8_t *rgb, int w, int h, size_t stride, int size, int center,
		      float *out)
{
	int side = w > h ? w : h;
	int diff = w > h ? w - h : h - w;
	int before = 0;
	float scale;

	/* padToSquare: append = round(diff * (center ? 0.5 : 1)) after, the rest before */
	if (center)
		before = diff - (int)floor(diff * 0.5 + 0.5);
	scale = (float)side / (float)size;
	for (int r = 0; r < size; r++) {
		float yin = (float)r * scale;
		int y0 = (int)floorf(yin);
		int y1 = (int)ceilf(yin);
		float yl = yin - (float)y0;

		if (y1 > side - 1)
			y1 = side - 1;
		for (int c = 0; c < size; c++) {
			float xin = (float)c * scale;
			int x0 = (int)floorf(xin);
			int x1 = (int)ceilf(xin);
			float xl = xin - (float)x0;
			float *o = out + ((size_t)r * size + c) * 3;

			if (x1 > side - 1)
				x1 = side - 1;
			for (int ch = 0; ch < 3; ch++) {
				int py = w > h ? before : 0, px = w > h ? 0 : before;
				float tl = padded_px(rgb, w, h, stride, py, px, y0, x0, ch);
				float tr = padded_px(rgb, w, h, stride, py, px, y0, x1, ch);
				float bl = padded_px(rgb, w, h, stride, py, px, y1, x0, ch);
				float br = padded_px(rgb, w, h, stride, py, px, y1, x1, ch);
				float top = tl + (tr - tl) * xl;
				float bot = bl + (br - bl) * xl;

				o[ch] = top + (bot - top) * yl;
			}
		}
	}
}

/* A grouped conv (gpu_conv.groups > 1): output channel co reads input channels of its group. */
static void conv2d_grouped(const struct gpu_conv *c, const float *restrict in, int h, int w, int pt,
			   int pl, int oh, int ow, float *restrict out)
{
	int g = c->groups, cin_g = c->cin / g, cout_g = c->cout / g;

	for (int oy = 0; oy < oh; oy++) {
		for (int ox = 0; ox < ow; ox++) {
			float *restrict o = out + ((size_t)oy * ow + ox) * c->cout;

			for (int co = 0; co < c->cout; co++)
				o[co] = 0.0f;
			for (int ky = 0; ky < c->k; ky++) {
				int iy = oy * c->stride - pt + ky;

				if (iy < 0 || iy >= h)
					continue;
				for (int kx = 0; kx < c->k; kx++) {
					int ix = ox * c->stride - pl + kx;
					const float *ip = in + ((size_t)iy * w + ix) * c->cin;
					const float *wp = c->filt + ((size_t)ky * c->k + kx) * cin_g * c->cout;

					if (ix < 0 || ix >= w)
						continue;
					for (int gi = 0; gi < g; gi++)
						for (int ci = 0; ci < cin_g; ci++) {
							const float a = ip[gi * cin_g + ci];
							const float *restrict wr = wp + (size_t)ci * c->cout + (size_t)gi * cout_g;
							float *restrict og = o + (size_t)gi * cout_g;

							for (int co = 0; co < cout_g; co++)
								og[co] += a * wr[co];
						}
				}
			}
			for (int co = 0; co < c->cout; co++) {
				float v = o[co];

				if (c->bias)
					v += c->bias[co];
				if (c->mul)
					v *= c->mul[co];
				if (c->add)
					v += c->add[co];
				o[co] = act_apply(v, c->act);
			}
		}
	}
}

static void conv_ref_one(const struct gpu_conv *c, const float *in, int h, int w, float *out,
			 const int *oh, const int *ow, const int pad[4])
{
	if (!c->depthwise && c->groups > 1) {
		conv2d_grouped(c, in, h, w, pad[0], pad[1], *oh, *ow, out);
		return;
	}
	if (!c->depthwise) {
		conv2d_core(in, h, w, c->cin, c->filt, c->k, c->k, c->cout, c->stride, pad[0], pad[1],
			    *oh, *ow, c->bias, c->mul, c->add, c->act, out);
		return;
	}
	dwconv2d_core(in, h, w, c->cin, c->filt, c->k, c->stride, pad[0], pad[1], *oh, *ow, out);
	if (c->bias || c->mul || c->add || c->act != GPU_ACT_NONE) {
		size_t n = (size_t)*oh * *ow;

		for (size_t i = 0; i < n; i++) {
			float *o = out + i * c->cin;

			for (int ch = 0; ch < c->cin; ch++) {
				float v = o[ch];

				if (c->bias)
					v += c->bias[ch];
				if (c->mul)
					v *= c->mul[ch];
				if (c->add)
					v += c->add[ch];
				o[ch] = act_apply(v, c->act);
			}
		}
	}
}

void gpu_conv_ref(int nb, const struct gpu_conv *c, const float *in, int h, int w, float *out,
		  int *oh, int *ow)
{
	int pad[4];

	gpu_conv_out_dims(c, h, w, oh, ow, pad);
	for (int i = 0; i < nb; i++)
		conv_ref_one(c, in + (size_t)i * h * w * c->cin, h, w,
			     out + (size_t)i * *oh * *ow * c->cout, oh, ow, pad);
}
