/*
 * The three face nets as sequences of layers, written once over an executor X: the CUDA
 * executor (gpu_cuda_nets.cu: device memory, kernels, cuDNN) or the host emulation (the same
 * element kernels in a loop, for checking without a GPU). Each forward pass is gpu_nets.c's, step
 * for step; where gpu_nets.c runs a separate pass (ReLU after a convolution, the residual add) the
 * step is folded into the convolution's tail, which rounds the same way.
 *
 * An executor X (gpu_cuda_exec.cuh) provides, among others:
 *   typedef T                          the activations' storage type (float or __half)
 *   T *act(size_t n), float *f32(size_t n)   scratch, made at build time, zeroed when retired
 *   const float *put(const float *host, size_t n)   weights, copied into X's memory
 *   void layer(struct vgc_layer *L, int h, int w)   per-layer set-up for input H x W (cuDNN)
 *   template <class F> void each(size_t n, const F &f)   f(i) for i in [0, n)
 *   void conv(struct vgc_layer *L, int nb, const T *in, T *out, const T *res)   at L's own size
 *   int failed()                       nonzero once a step has failed (then results are void)
 */
#ifndef GPU_CUDA_NETS_CUH
#define GPU_CUDA_NETS_CUH

#include <string.h>

#include "gpu_cuda_kern.cuh"

extern "C" {
#include "../gpu_int.h"
}

struct vgc_dnn;   /* the CUDA executor's cuDNN state of one layer (gpu_cuda_nets.cu) */

/* One convolution: as the CPU net has it, and its weights in the executor's memory. */
struct vgc_layer {
	struct gpu_conv cpu;    /* host pointers, shape, stride, padding */
	const float *filt, *bias, *mul, *add;
	int act;                /* the CPU's, or RELU where the CPU runs a ReLU pass after it */
	int h, w, oh, ow;       /* the input and output size it was built for */
	int pt, pl;             /* TF's leading padding at that size */
	struct vgc_dnn *dnn;    /* NULL: the direct kernel */
};

/* A gpu_conv for the layer builders (the activation is the vgc_layer's own). */
static inline struct gpu_conv vgc_cv(const float *filt, const float *bias, const float *mul, const float *add,
				     int k, int cin, int cout, int stride, int depthwise, enum gpu_pad pad)
{
	struct gpu_conv c;

	memset(&c, 0, sizeof(c));
	c.filt = filt;
	c.bias = bias;
	c.mul = mul;
	c.add = add;
	c.k = k;
	c.cin = cin;
	c.cout = cout;
	c.stride = stride;
	c.depthwise = depthwise;
	c.pad = pad;
	return c;
}

template <class X> static void vgc_layer_make(X &x, struct vgc_layer *L, const struct gpu_conv *c, int act,
					      int h, int w)
{
	size_t nf = (size_t)c->k * c->k * c->cin * (c->depthwise ? 1 : c->cout);

	memset(L, 0, sizeof(*L));
	L->cpu = *c;
	L->act = act;
	L->filt = x.put(c->filt, nf);
	L->bias = c->bias ? x.put(c->bias, c->cout) : NULL;
	L->mul = c->mul ? x.put(c->mul, c->cout) : NULL;
	L->add = c->add ? x.put(c->add, c->cout) : NULL;
	L->h = h;
	L->w = w;
	vgk_out_dim(h, c->k, c->stride, c->pad == GPU_PAD_SAME, &L->oh, &L->pt);
	vgk_out_dim(w, c->k, c->stride, c->pad == GPU_PAD_SAME, &L->ow, &L->pl);
	x.layer(L);
}

/* The direct kernel for L: every executor's fallback, and the whole of the exact mode. */
template <class X, class T> static void vgc_conv_direct(X &x, const struct vgc_layer *L, int nb, const T *in,
							T *out, const T *res)
{
	const struct gpu_conv *c = &L->cpu;

	x.each((size_t)nb * L->oh * L->ow * c->cout,
	       vgk_conv<T>{.in = in, .filt = L->filt, .bias = L->bias, .mul = L->mul, .add = L->add, .res = res,
			   .out = out, .h = L->h, .w = L->w, .cin = c->cin, .cout = c->cout, .k = c->k,
			   .stride = c->stride, .pt = L->pt, .pl = L->pl, .oh = L->oh, .ow = L->ow, .act = L->act,
			   .depthwise = c->depthwise});
}

/* K x K pooling at stride S of NB images H x W x C; the output size into *OH, *OW. */
template <class X, class T> static void vgc_pool(X &x, int nb, const T *in, int h, int w, int c, int k, int s,
						 int same, int is_max, T *out, int *oh, int *ow)
{
	int pt, pl;

	vgk_out_dim(h, k, s, same, oh, &pt);
	vgk_out_dim(w, k, s, same, ow, &pl);
	x.each((size_t)nb * *oh * *ow * c, vgk_pool<T>{.in = in, .out = out, .h = h, .w = w, .c = c, .k = k, .s = s,
							.pt = pt, .pl = pl, .oh = *oh, .ow = *ow, .is_max = is_max});
}

/* ==== SSD MobileNetV1 (gpu_ssd_forward) ========================================================= */

template <class T> struct vgc_ssd {
	struct vgc_layer conv0, dw[14], pw[14], extra[8], box[6], cls[6];
	const float *anchors;
	float *in, *boxes, *scores;   /* raw pixels in; NB x 5118 boxes and scores out */
	T *x, *a, *b, *conv11, *ex[8], *pbox[6], *pcls[6];
	int max_nb;
};

static const int vgc_ssd_pred_side[6] = {32, 16, 8, 4, 2, 1};

template <class X> static void vgc_ssd_build(X &x, vgc_ssd<typename X::T> &n, const struct gpu_ssd *s, int max_nb)
{
	struct gpu_conv c;
	int h = 256, side = 16;

	n.max_nb = max_nb;
	c = vgc_cv(s->conv0.filt, s->conv0.off, NULL, NULL, 3, 3, 32, 2, 0, GPU_PAD_SAME);
	vgc_layer_make(x, &n.conv0, &c, VGK_ACT_RELU6, 512, 512);
	for (int i = 1; i <= 13; i++) {
		const struct ssd_dw *d = &s->dw[i];
		const struct ssd_pw *p = &s->pw[i];
		int oh = d->stride == 2 ? (h + 1) / 2 : h;

		c = vgc_cv(d->filt, d->negmean, d->mul, d->add, 3, d->c, d->c, d->stride, 1, GPU_PAD_SAME);
		vgc_layer_make(x, &n.dw[i], &c, VGK_ACT_RELU6, h, h);
		c = vgc_cv(p->filt, p->off, NULL, NULL, 1, p->cin, p->cout, 1, 0, GPU_PAD_SAME);
		vgc_layer_make(x, &n.pw[i], &c, VGK_ACT_RELU6, oh, oh);
		h = oh;
	}
	for (int i = 0; i < 8; i++) {
		const struct ssd_pw *p = &s->extra[i];

		c = vgc_cv(p->filt, p->off, NULL, NULL, p->k, p->cin, p->cout, p->stride, 0, GPU_PAD_SAME);
		vgc_layer_make(x, &n.extra[i], &c, VGK_ACT_RELU6, side, side);
		n.ex[i] = x.act((size_t)max_nb * n.extra[i].oh * n.extra[i].ow * p->cout);
		side = n.extra[i].oh;
	}
	for (int i = 0; i < 6; i++) {
		const struct ssd_pred *p = &s->pred[i];
		int sd = vgc_ssd_pred_side[i];

		c = vgc_cv(p->box_w, p->box_b, NULL, NULL, 1, p->cin, p->anchors * 4, 1, 0, GPU_PAD_SAME);
		vgc_layer_make(x, &n.box[i], &c, VGK_ACT_NONE, sd, sd);
		c.filt = p->cls_w;
		c.bias = p->cls_b;
		c.cout = p->anchors * 3;
		vgc_layer_make(x, &n.cls[i], &c, VGK_ACT_NONE, sd, sd);
		n.pbox[i] = x.act((size_t)max_nb * sd * sd * p->anchors * 4);
		n.pcls[i] = x.act((size_t)max_nb * sd * sd * p->anchors * 3);
	}
	n.anchors = x.put(s->anchors, (size_t)GPU_SSD_ANCHORS * 4);
	n.in = x.f32((size_t)max_nb * 512 * 512 * 3);
	n.x = x.act((size_t)max_nb * 512 * 512 * 3);
	n.a = x.act((size_t)max_nb * 256 * 256 * 64);
	n.b = x.act((size_t)max_nb * 256 * 256 * 64);
	n.conv11 = x.act((size_t)max_nb * 32 * 32 * 512);
	n.boxes = x.f32((size_t)max_nb * GPU_SSD_ANCHORS * 4);
	n.scores = x.f32((size_t)max_nb * GPU_SSD_ANCHORS);
}

/* N.in (NB 512x512 raw-pixel inputs) to N.boxes and N.scores. */
template <class X> static void vgc_ssd_forward(X &x, vgc_ssd<typename X::T> &n, int nb)
{
	typedef typename X::T T;
	T *cur = n.a;
	struct vgk_ssd_decode<T> dec;

	x.each((size_t)nb * 512 * 512 * 3, vgk_normalize<T>{.in = n.in, .out = n.x, .mean = NULL});
	x.conv(&n.conv0, nb, n.x, n.a, (const T *)NULL);
	for (int i = 1; i <= 13; i++) {
		T *dst = i == 11 ? n.conv11 : (cur == n.conv11 ? n.a : cur);

		x.conv(&n.dw[i], nb, cur, n.b, (const T *)NULL);
		x.conv(&n.pw[i], nb, n.b, dst, (const T *)NULL);
		cur = dst;
	}
	{
		const T *prev = cur;   /* 16x16x1024 */

		for (int i = 0; i < 8; i++) {
			x.conv(&n.extra[i], nb, prev, n.ex[i], (const T *)NULL);
			prev = n.ex[i];
		}
	}
	{
		const T *src[6] = {n.conv11, cur, n.ex[1], n.ex[3], n.ex[5], n.ex[7]};

		for (int i = 0; i < 6; i++) {
			x.conv(&n.box[i], nb, src[i], n.pbox[i], (const T *)NULL);
			x.conv(&n.cls[i], nb, src[i], n.pcls[i], (const T *)NULL);
			dec.box[i] = n.pbox[i];
			dec.cls[i] = n.pcls[i];
			dec.count[i] = vgc_ssd_pred_side[i] * vgc_ssd_pred_side[i] * (i == 0 ? 3 : 6);
		}
	}
	dec.anchors = n.anchors;
	dec.boxes = n.boxes;
	dec.scores = n.scores;
	x.each((size_t)nb * GPU_SSD_ANCHORS, dec);
}

/* ==== 68-point landmarks (gpu_lm_forward) ======================================================= */

template <class T> struct vgc_lm {
	struct vgc_layer dw[4][4], pw[4][4];   /* dw[0][0] unused: dense0/conv0 is a plain conv */
	const float *fc_w, *fc_b, *mean;
	float *in, *out;   /* NB x 112x112x3 raw pixels in, NB x 136 out */
	T *x, *o[4], *tmp;
	int max_nb;
};

static const float vgc_face_mean[3] = {122.782f, 117.001f, 104.298f};
static const int vgc_lm_ch[5] = {3, 32, 64, 128, 256};

template <class X> static void vgc_lm_build(X &x, vgc_lm<typename X::T> &n, const struct gpu_lm *s, int max_nb)
{
	int h = 112;
	size_t big = (size_t)max_nb * 56 * 56 * 32;

	n.max_nb = max_nb;
	for (int d = 0; d < 4; d++) {
		for (int c = 0; c < 4; c++) {
			const struct lm_sep *sp = &s->conv[d][c];
			/* the block's first conv halves H x W; the other three run at the halved size */
			int stride = c == 0 ? 2 : 1, ih = c == 0 ? h : h / 2, oh = h / 2;
			/* the first conv of a block is followed by a ReLU pass on the CPU: here its tail */
			int act = c == 0 ? VGK_ACT_RELU : VGK_ACT_NONE;
			struct gpu_conv cv;

			if (!sp->dw) {
				cv = vgc_cv(sp->pw, sp->bias, NULL, NULL, 3, sp->cin, sp->cout, stride, 0, GPU_PAD_SAME);
				vgc_layer_make(x, &n.pw[d][c], &cv, act, ih, ih);
				continue;
			}
			cv = vgc_cv(sp->dw, NULL, NULL, NULL, 3, sp->cin, sp->cin, stride, 1, GPU_PAD_SAME);
			vgc_layer_make(x, &n.dw[d][c], &cv, VGK_ACT_NONE, ih, ih);
			cv = vgc_cv(sp->pw, sp->bias, NULL, NULL, 1, sp->cin, sp->cout, 1, 0, GPU_PAD_VALID);
			vgc_layer_make(x, &n.pw[d][c], &cv, act, oh, oh);
		}
		h /= 2;
	}
	n.fc_w = x.put(s->fc_w, 256 * 136);
	n.fc_b = x.put(s->fc_b, 136);
	n.mean = x.put(vgc_face_mean, 3);
	n.in = x.f32((size_t)max_nb * 112 * 112 * 3);
	n.out = x.f32((size_t)max_nb * 136);
	n.x = x.act(big);
	for (int i = 0; i < 4; i++)
		n.o[i] = x.act(big);
	n.tmp = x.act(big);
}

template <class X> static void vgc_lm_sep(X &x, vgc_lm<typename X::T> &n, int d, int c, int nb,
					  const typename X::T *in, typename X::T *out)
{
	if (d == 0 && c == 0) {
		x.conv(&n.pw[0][0], nb, in, out, (const typename X::T *)NULL);
		return;
	}
	x.conv(&n.dw[d][c], nb, in, n.tmp, (const typename X::T *)NULL);
	x.conv(&n.pw[d][c], nb, n.tmp, out, (const typename X::T *)NULL);
}

template <class X> static void vgc_lm_forward(X &x, vgc_lm<typename X::T> &n, int nb)
{
	typedef typename X::T T;
	int h = 112, oh, ow;

	x.each((size_t)nb * 112 * 112 * 3, vgk_normalize<T>{.in = n.in, .out = n.x, .mean = n.mean});
	for (int d = 0; d < 4; d++) {
		size_t cnt;

		vgc_lm_sep(x, n, d, 0, nb, n.x, n.o[0]);
		h /= 2;
		cnt = (size_t)nb * h * h * vgc_lm_ch[d + 1];
		vgc_lm_sep(x, n, d, 1, nb, n.o[0], n.o[1]);
		x.each(cnt, vgk_sum_relu<T>{.a = n.o[0], .b = n.o[1], .c = NULL, .d = NULL, .out = n.x, .nin = 2});
		vgc_lm_sep(x, n, d, 2, nb, n.x, n.o[2]);
		x.each(cnt, vgk_sum_relu<T>{.a = n.o[0], .b = n.o[1], .c = n.o[2], .d = NULL, .out = n.x, .nin = 3});
		vgc_lm_sep(x, n, d, 3, nb, n.x, n.o[3]);
		x.each(cnt, vgk_sum_relu<T>{.a = n.o[0], .b = n.o[1], .c = n.o[2], .d = n.o[3], .out = n.x, .nin = 4});
	}
	/* avgPool 7x7/2 valid -> 1x1x256, then fc + bias */
	vgc_pool(x, nb, (const T *)n.x, 7, 7, 256, 7, 2, 0, 0, n.tmp, &oh, &ow);
	x.each((size_t)nb * 136, vgk_fc<T>{.in = n.tmp, .wt = n.fc_w, .bias = n.fc_b, .out = n.out, .nin = 256, .nout = 136});
}

/* ==== 128-d recognition ResNet (gpu_rec_forward) ================================================ */

template <class T> struct vgc_rec {
	struct vgc_layer stem, c1[GPU_REC_BLOCKS], c2[GPU_REC_BLOCKS];
	int down[GPU_REC_BLOCKS];
	const float *fc, *mean;
	float *in, *pooled, *out;   /* NB x 150x150x3 raw pixels in; NB x 256 means; NB x 128 out */
	T *buf[4];
	int max_nb;
};

template <class X> static void vgc_rec_build(X &x, vgc_rec<typename X::T> &n, const struct gpu_rec *s, int max_nb)
{
	struct gpu_conv c;
	int h = 35;

	n.max_nb = max_nb;
	c = vgc_cv(s->stem.filt, s->stem.bias, s->stem.sw, s->stem.sb, 7, 3, 32, 2, 0, GPU_PAD_VALID);
	vgc_layer_make(x, &n.stem, &c, VGK_ACT_RELU, 150, 150);
	for (int i = 0; i < GPU_REC_BLOCKS; i++) {
		const struct rec_block *b = &s->blk[i];
		int down = b->down;

		n.down[i] = down;
		c = vgc_cv(b->c1.filt, b->c1.bias, b->c1.sw, b->c1.sb, 3, b->c1.cin, b->c1.cout, down ? 2 : 1, 0, down ? GPU_PAD_VALID : GPU_PAD_SAME);
		vgc_layer_make(x, &n.c1[i], &c, VGK_ACT_RELU, h, h);
		c = vgc_cv(b->c2.filt, b->c2.bias, b->c2.sw, b->c2.sb, 3, b->c2.cin, b->c2.cout, 1, 0, GPU_PAD_SAME);
		vgc_layer_make(x, &n.c2[i], &c, VGK_ACT_NONE, n.c1[i].oh, n.c1[i].ow);
		if (down)
			h /= 2;
	}
	n.fc = x.put(s->fc, 256 * 128);
	n.mean = x.put(vgc_face_mean, 3);
	n.in = x.f32((size_t)max_nb * 150 * 150 * 3);
	n.pooled = x.f32((size_t)max_nb * 256);
	n.out = x.f32((size_t)max_nb * 128);
	for (int i = 0; i < 4; i++)
		n.buf[i] = x.act((size_t)max_nb * 72 * 72 * 32);
}

template <class X> static void vgc_rec_forward(X &x, vgc_rec<typename X::T> &n, int nb)
{
	typedef typename X::T T;
	T *xb = n.buf[0], *a = n.buf[1], *b = n.buf[2], *p = n.buf[3];
	int h = 35, c = 32, oh, ow;

	x.each((size_t)nb * 150 * 150 * 3, vgk_normalize<T>{.in = n.in, .out = a, .mean = n.mean});
	x.conv(&n.stem, nb, a, b, (const T *)NULL);   /* 72x72x32 */
	vgc_pool(x, nb, (const T *)b, 72, 72, 32, 3, 2, 0, 1, xb, &oh, &ow);   /* 35 */
	for (int i = 0; i < GPU_REC_BLOCKS; i++) {
		if (!n.down[i]) {
			/* relu(conv2(relu(conv1(x))) + x): the add and ReLU in conv2's tail */
			x.conv(&n.c1[i], nb, xb, a, (const T *)NULL);
			x.conv(&n.c2[i], nb, a, b, (const T *)xb);
			{
				T *t = xb;

				xb = b;
				b = t;
			}
		} else {
			int co = n.c1[i].cpu.cout, bh = n.c2[i].oh, bw = n.c2[i].ow, ph, pw;

			x.conv(&n.c1[i], nb, xb, a, (const T *)NULL);
			x.conv(&n.c2[i], nb, a, b, (const T *)NULL);
			vgc_pool(x, nb, (const T *)xb, h, h, c, 2, 2, 0, 0, p, &ph, &pw);
			x.each((size_t)nb * ph * pw * co, vgk_rec_merge<T>{.pool = p, .b = b, .out = xb, .ph = ph, .pw = pw,
									   .c = c, .bh = bh, .bw = bw, .co = co});
			h = ph;
			c = co;
		}
	}
	x.each((size_t)nb * c, vgk_mean_hw<T>{.in = xb, .out = n.pooled, .hw = h * h, .c = c});
	x.each((size_t)nb * 128, vgk_fc<float>{.in = n.pooled, .wt = n.fc, .bias = NULL, .out = n.out, .nin = 256, .nout = 128});
}

#endif /* GPU_CUDA_NETS_CUH */
