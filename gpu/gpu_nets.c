/*
 * The three face-api nets on the reference kernels, layer by layer as face-nets.md §4, §6, §7 and
 * face-api's TypeScript give them. Each net resolves every tensor it needs by name and shape when
 * it is created (a wrong or missing tensor is a one-line error then, never at inference), and
 * owns its scratch tensors, so a forward pass never allocates. A net is used by one thread at a
 * time.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_int.h"
#include "vg_base.h"

/* Resolve a tensor or fail the create with ERR already set. */
#define GET(dst, w, name, ...)                                                                  \
	do {                                                                                    \
		static const int shp_[] = {__VA_ARGS__};                                        \
		(dst) = gpu_weights_get((w), (name), (int)VG_ARRAY_SIZE(shp_), shp_, err, errlen); \
		if (!(dst))                                                                     \
			goto out_fail;                                                          \
	} while (0)

static const float *getf(const struct gpu_weights *w, int ndim, const int *shape, char *err,
			 size_t errlen, const char *fmt, ...) VG_PRINTF(6, 7);

#include <stdarg.h>
static const float *getf(const struct gpu_weights *w, int ndim, const int *shape, char *err,
			 size_t errlen, const char *fmt, ...)
{
	char name[GPU_TENSOR_NAME_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	return gpu_weights_get(w, name, ndim, shape, err, errlen);
}

static void relu_inplace(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* ======================================================================================== */
/* SSD MobileNetV1 (face-nets.md §7)                                                        */
/* ======================================================================================== */


static const int ssd_channels[14] = {32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};

int gpu_ssd_create(struct gpu_ssd **out, const struct gpu_weights *w, char *err, size_t errlen)
{
	struct gpu_ssd *n = calloc(1, sizeof(*n));
	static const int ex_k[8] = {1, 3, 1, 3, 1, 3, 1, 3};
	static const int ex_c[8] = {256, 512, 128, 256, 128, 256, 64, 128};
	static const int pred_cin[6] = {512, 1024, 512, 256, 256, 128};
	size_t bn_floats = 0;
	int rc = -EINVAL;

	if (!n)
		return vg_errf(err, errlen, -ENOMEM, "ssd: out of memory");
	n->conv0 = (struct ssd_pw){.k = 3, .cin = 3, .cout = 32, .stride = 2};
	GET(n->conv0.filt, w, "MobilenetV1/Conv2d_0_pointwise/weights", 3, 3, 3, 32);
	GET(n->conv0.off, w, "MobilenetV1/Conv2d_0_pointwise/convolution_bn_offset", 32);
	for (int i = 1; i <= 13; i++) {
		int c = ssd_channels[i - 1], co = ssd_channels[i];
		int s4[4] = {3, 3, c, 1}, s1[1] = {c}, p4[4] = {1, 1, c, co}, p1[1] = {co};
		struct ssd_dw *d = &n->dw[i];
		struct ssd_pw *p = &n->pw[i];
		const char *pre = "MobilenetV1/Conv2d_";

		d->c = c;
		d->stride = (i == 2 || i == 4 || i == 6 || i == 12) ? 2 : 1;
		if (!(d->filt = getf(w, 4, s4, err, errlen, "%s%d_depthwise/depthwise_weights", pre, i)) ||
		    !(d->gamma = getf(w, 1, s1, err, errlen, "%s%d_depthwise/BatchNorm/gamma", pre, i)) ||
		    !(d->beta = getf(w, 1, s1, err, errlen, "%s%d_depthwise/BatchNorm/beta", pre, i)) ||
		    !(d->mean = getf(w, 1, s1, err, errlen, "%s%d_depthwise/BatchNorm/moving_mean", pre, i)) ||
		    !(d->var = getf(w, 1, s1, err, errlen, "%s%d_depthwise/BatchNorm/moving_variance", pre, i)))
			goto out_fail;
		*p = (struct ssd_pw){.k = 1, .cin = c, .cout = co, .stride = 1};
		if (!(p->filt = getf(w, 4, p4, err, errlen, "%s%d_pointwise/weights", pre, i)) ||
		    !(p->off = getf(w, 1, p1, err, errlen, "%s%d_pointwise/convolution_bn_offset", pre, i)))
			goto out_fail;
		bn_floats += 3 * (size_t)c;
	}
	for (int i = 0; i < 8; i++) {
		int cin = i == 0 ? 1024 : ex_c[i - 1];
		int s4[4] = {ex_k[i], ex_k[i], cin, ex_c[i]}, s1[1] = {ex_c[i]};
		struct ssd_pw *p = &n->extra[i];

		*p = (struct ssd_pw){.k = ex_k[i], .cin = cin, .cout = ex_c[i], .stride = ex_k[i] == 3 ? 2 : 1};
		if (!(p->filt = getf(w, 4, s4, err, errlen, "Prediction/Conv2d_%d_pointwise/weights", i)) ||
		    !(p->off = getf(w, 1, s1, err, errlen, "Prediction/Conv2d_%d_pointwise/convolution_bn_offset", i)))
			goto out_fail;
	}
	for (int i = 0; i < 6; i++) {
		int a = i == 0 ? 3 : 6;
		int bw[4] = {1, 1, pred_cin[i], a * 4}, bb[1] = {a * 4};
		int cw[4] = {1, 1, pred_cin[i], a * 3}, cb[1] = {a * 3};
		struct ssd_pred *p = &n->pred[i];
		const char *pre = "Prediction/BoxPredictor_";

		p->cin = pred_cin[i];
		p->anchors = a;
		if (!(p->box_w = getf(w, 4, bw, err, errlen, "%s%d/BoxEncodingPredictor/weights", pre, i)) ||
		    !(p->box_b = getf(w, 1, bb, err, errlen, "%s%d/BoxEncodingPredictor/biases", pre, i)) ||
		    !(p->cls_w = getf(w, 4, cw, err, errlen, "%s%d/ClassPredictor/weights", pre, i)) ||
		    !(p->cls_b = getf(w, 1, cb, err, errlen, "%s%d/ClassPredictor/biases", pre, i)))
			goto out_fail;
	}
	GET(n->anchors, w, "Output/extra_dim", 1, GPU_SSD_ANCHORS, 4);

	rc = -ENOMEM;
	n->a = gpu_bio_alloc(256 * 256 * 64 * sizeof(float));
	n->b = gpu_bio_alloc(256 * 256 * 64 * sizeof(float));
	n->conv11 = gpu_bio_alloc(32 * 32 * 512 * sizeof(float));
	n->raw_box = gpu_bio_alloc(GPU_SSD_ANCHORS * 4 * sizeof(float));
	n->raw_cls = gpu_bio_alloc(GPU_SSD_ANCHORS * 3 * sizeof(float));
	n->bnbuf = malloc(bn_floats * sizeof(float));
	if (!n->a || !n->b || !n->conv11 || !n->raw_box || !n->raw_cls || !n->bnbuf)
		goto out_nomem;
	for (int i = 0, side = 16; i < 8; i++) {
		if (ex_k[i] == 3)
			side = (side + 1) / 2;
		n->ex[i] = gpu_bio_alloc((size_t)side * side * ex_c[i] * sizeof(float));
		if (!n->ex[i])
			goto out_nomem;
	}
	{
		float *bp = n->bnbuf;

		for (int i = 1; i <= 13; i++) {
			struct ssd_dw *d = &n->dw[i];

			d->mul = bp;
			d->add = bp + d->c;
			d->negmean = bp + 2 * (size_t)d->c;
			bp += 3 * (size_t)d->c;
			for (int c = 0; c < d->c; c++) {
				d->mul[c] = d->gamma[c] / sqrtf(d->var[c] + GPU_SSD_BN_EPS);
				d->add[c] = d->beta[c];
				d->negmean[c] = -d->mean[c];
			}
		}
	}
	*out = n;
	return 0;

out_nomem:
	vg_errf(err, errlen, rc, "ssd: out of memory for activations");
out_fail:
	gpu_ssd_destroy(&n);
	return rc;
}

void gpu_ssd_destroy(struct gpu_ssd **net)
{
	struct gpu_ssd *n = net ? *net : NULL;

	if (!n)
		return;
	gpu_bio_free(n->a);
	gpu_bio_free(n->b);
	gpu_bio_free(n->conv11);
	gpu_bio_free(n->raw_box);
	gpu_bio_free(n->raw_cls);
	free(n->bnbuf);
	for (int i = 0; i < 8; i++)
		gpu_bio_free(n->ex[i]);
	free(n);
	*net = NULL;
}

static void ssd_pw_run(struct gpu_dnnl *dn, const struct ssd_pw *p, const float *in, int h, int w,
		       float *out, int *oh, int *ow)
{
	struct gpu_conv c = {.filt = p->filt, .bias = p->off, .k = p->k, .cin = p->cin, .cout = p->cout,
			     .stride = p->stride, .pad = GPU_PAD_SAME, .act = GPU_ACT_RELU6};

	gpu_conv_run(dn, 1, &c, in, h, w, out, oh, ow);
}

/* depthwise 3x3, then batch norm and ReLU6, as one layer */
static void ssd_dw_run(struct gpu_dnnl *dn, const struct ssd_dw *d, const float *in, int h, int w,
		       float *out, int *oh, int *ow)
{
	struct gpu_conv c = {.filt = d->filt, .bias = d->negmean, .mul = d->mul, .add = d->add, .k = 3,
			     .cin = d->c, .cout = d->c, .stride = d->stride, .depthwise = 1,
			     .pad = GPU_PAD_SAME, .act = GPU_ACT_RELU6};

	gpu_conv_run(dn, 1, &c, in, h, w, out, oh, ow);
}

/* One box predictor: 1x1 convs with bias, appended to the raw box and class arrays at BASE. */
static int ssd_pred_run(struct gpu_dnnl *dn, const struct ssd_pred *p, const float *in, int h,
			int w, float *raw_box, float *raw_cls, int base)
{
	struct gpu_conv cb = {.filt = p->box_w, .bias = p->box_b, .k = 1, .cin = p->cin,
			      .cout = p->anchors * 4, .stride = 1, .pad = GPU_PAD_SAME};
	struct gpu_conv cc = {.filt = p->cls_w, .bias = p->cls_b, .k = 1, .cin = p->cin,
			      .cout = p->anchors * 3, .stride = 1, .pad = GPU_PAD_SAME};
	int oh, ow;

	gpu_conv_run(dn, 1, &cb, in, h, w, raw_box + (size_t)base * 4, &oh, &ow);
	gpu_conv_run(dn, 1, &cc, in, h, w, raw_cls + (size_t)base * 3, &oh, &ow);
	return base + h * w * p->anchors;
}

void gpu_ssd_forward(struct gpu_ssd *n, struct gpu_dnnl *dn, const float *input, float *boxes, float *scores)
{
	float *x = n->a, *y = n->b;
	int h = 512, w = 512, oh, ow, base = 0;
	size_t npx = 512 * 512 * 3;

	/* x/127.5 - 1, as two float ops like tfjs */
	for (size_t i = 0; i < npx; i++)
		y[i] = input[i] / 127.5f - 1.0f;
	ssd_pw_run(dn, &n->conv0, y, h, w, x, &oh, &ow);
	h = oh, w = ow;
	for (int i = 1; i <= 13; i++) {
		ssd_dw_run(dn, &n->dw[i], x, h, w, y, &oh, &ow);
		h = oh, w = ow;
		ssd_pw_run(dn, &n->pw[i], y, h, w, i == 11 ? n->conv11 : x, &oh, &ow);
		if (i == 11)
			memcpy(x, n->conv11, (size_t)h * w * 512 * sizeof(float));
	}
	/* x: 16x16x1024 */
	{
		int eh = 16, ew = 16;
		const float *prev = x;

		for (int i = 0; i < 8; i++) {
			ssd_pw_run(dn, &n->extra[i], prev, eh, ew, n->ex[i], &oh, &ow);
			eh = oh, ew = ow;
			prev = n->ex[i];
		}
	}
	base = ssd_pred_run(dn, &n->pred[0], n->conv11, 32, 32, n->raw_box, n->raw_cls, base);
	base = ssd_pred_run(dn, &n->pred[1], x, 16, 16, n->raw_box, n->raw_cls, base);
	base = ssd_pred_run(dn, &n->pred[2], n->ex[1], 8, 8, n->raw_box, n->raw_cls, base);
	base = ssd_pred_run(dn, &n->pred[3], n->ex[3], 4, 4, n->raw_box, n->raw_cls, base);
	base = ssd_pred_run(dn, &n->pred[4], n->ex[5], 2, 2, n->raw_box, n->raw_cls, base);
	base = ssd_pred_run(dn, &n->pred[5], n->ex[7], 1, 1, n->raw_box, n->raw_cls, base);
	(void)base;

	/* decode (outputLayer.ts), op by op in float32 */
	for (int i = 0; i < GPU_SSD_ANCHORS; i++) {
		const float *an = n->anchors + (size_t)i * 4;
		const float *r = n->raw_box + (size_t)i * 4;
		float s0 = an[2] - an[0], s1 = an[3] - an[1];
		float c0 = an[0] + s0 / 2.0f, c1 = an[1] + s1 / 2.0f;
		float div0 = expf(r[2] / 5.0f) * s0 / 2.0f;
		float add0 = r[0] / 10.0f * s0 + c0;
		float div1 = expf(r[3] / 5.0f) * s1 / 2.0f;
		float add1 = r[1] / 10.0f * s1 + c1;

		boxes[i * 4 + 0] = add0 - div0;
		boxes[i * 4 + 1] = add1 - div1;
		boxes[i * 4 + 2] = add0 + div0;
		boxes[i * 4 + 3] = add1 + div1;
		scores[i] = 1.0f / (1.0f + expf(-n->raw_cls[(size_t)i * 3 + 1]));
	}
}

/* ======================================================================================== */
/* 68-point landmarks (face-nets.md §6)                                                     */
/* ======================================================================================== */


static const int lm_ch[5] = {3, 32, 64, 128, 256};

int gpu_lm_create(struct gpu_lm **out, const struct gpu_weights *w, char *err, size_t errlen)
{
	struct gpu_lm *n = calloc(1, sizeof(*n));
	int rc = -EINVAL;

	if (!n)
		return vg_errf(err, errlen, -ENOMEM, "landmarks: out of memory");
	for (int d = 0; d < 4; d++) {
		for (int c = 0; c < 4; c++) {
			struct lm_sep *s = &n->conv[d][c];
			int cin = c == 0 ? lm_ch[d] : lm_ch[d + 1], co = lm_ch[d + 1];
			int dws[4] = {3, 3, cin, 1}, pws[4] = {1, 1, cin, co}, bs[1] = {co};
			int cs[4] = {3, 3, cin, co};

			s->cin = cin;
			s->cout = co;
			if (d == 0 && c == 0) {
				if (!(s->pw = getf(w, 4, cs, err, errlen, "dense0/conv0/filters")))
					goto out_fail;
			} else if (!(s->dw = getf(w, 4, dws, err, errlen, "dense%d/conv%d/depthwise_filter", d, c)) ||
				   !(s->pw = getf(w, 4, pws, err, errlen, "dense%d/conv%d/pointwise_filter", d, c))) {
				goto out_fail;
			}
			if (!(s->bias = getf(w, 1, bs, err, errlen, "dense%d/conv%d/bias", d, c)))
				goto out_fail;
		}
	}
	GET(n->fc_w, w, "fc/weights", 256, 136);
	GET(n->fc_b, w, "fc/bias", 136);
	rc = -ENOMEM;
	for (int i = 0; i < 6; i++) {
		n->buf[i] = gpu_bio_alloc(56 * 56 * 32 * sizeof(float));   /* the largest activation */
		if (!n->buf[i]) {
			vg_errf(err, errlen, rc, "landmarks: out of memory");
			goto out_fail;
		}
	}
	*out = n;
	return 0;

out_fail:
	gpu_lm_destroy(&n);
	return rc;
}

void gpu_lm_destroy(struct gpu_lm **net)
{
	struct gpu_lm *n = net ? *net : NULL;

	if (!n)
		return;
	for (int i = 0; i < 6; i++)
		gpu_bio_free(n->buf[i]);
	free(n);
	*net = NULL;
}

/* depthwiseSeparableConv: dw 3x3 'same' (no bias) -> 1x1 -> + bias. TMP holds the dw output. */
static void lm_sep_run(struct gpu_dnnl *dn, const struct lm_sep *s, const float *in, int h, int w,
		       int stride, float *tmp, float *out, int *oh, int *ow)
{
	struct gpu_conv pw = {.filt = s->pw, .bias = s->bias, .k = s->dw ? 1 : 3, .cin = s->cin,
			      .cout = s->cout, .stride = s->dw ? 1 : stride,
			      .pad = s->dw ? GPU_PAD_VALID : GPU_PAD_SAME};
	struct gpu_conv dw = {.filt = s->dw, .k = 3, .cin = s->cin, .cout = s->cin, .stride = stride,
			      .depthwise = 1, .pad = GPU_PAD_SAME};
	int th, tw;

	if (!s->dw) {
		gpu_conv_run(dn, 1, &pw, in, h, w, out, oh, ow);
		return;
	}
	gpu_conv_run(dn, 1, &dw, in, h, w, tmp, &th, &tw);
	gpu_conv_run(dn, 1, &pw, tmp, th, tw, out, oh, ow);
}

void gpu_lm_forward(struct gpu_lm *n, struct gpu_dnnl *dn, const float *input, float *out136)
{
	static const float mean[3] = {122.782f, 117.001f, 104.298f};
	float *x = n->buf[0], *o1 = n->buf[1], *o2 = n->buf[2], *o3 = n->buf[3], *o4 = n->buf[4];
	float *tmp = n->buf[5];
	int h = 112, w = 112, oh, ow;

	for (size_t i = 0; i < 112 * 112; i++)
		for (int c = 0; c < 3; c++)
			x[i * 3 + c] = (input[i * 3 + c] - mean[c]) / 255.0f;
	for (int d = 0; d < 4; d++) {
		int c = lm_ch[d + 1];
		size_t cnt;

		lm_sep_run(dn, &n->conv[d][0], x, h, w, 2, tmp, o1, &oh, &ow);
		h = oh, w = ow;
		cnt = (size_t)h * w * c;
		relu_inplace(o1, cnt);
		lm_sep_run(dn, &n->conv[d][1], o1, h, w, 1, tmp, o2, &oh, &ow);
		/* in3 = relu(o1 + o2) */
		for (size_t i = 0; i < cnt; i++) {
			float v = o1[i] + o2[i];
			x[i] = v > 0.0f ? v : 0.0f;
		}
		lm_sep_run(dn, &n->conv[d][2], x, h, w, 1, tmp, o3, &oh, &ow);
		/* in4 = relu(o1 + (o2 + o3)) */
		for (size_t i = 0; i < cnt; i++) {
			float v = o1[i] + (o2[i] + o3[i]);
			x[i] = v > 0.0f ? v : 0.0f;
		}
		lm_sep_run(dn, &n->conv[d][3], x, h, w, 1, tmp, o4, &oh, &ow);
		/* out = relu(o1 + (o2 + (o3 + o4))) */
		for (size_t i = 0; i < cnt; i++) {
			float v = o1[i] + (o2[i] + (o3[i] + o4[i]));
			x[i] = v > 0.0f ? v : 0.0f;
		}
	}
	/* avgPool 7x7/2 valid on 7x7x256 -> 1x1x256, then fc + bias */
	gpu_avgpool_ref(x, 7, 7, 256, 7, 2, GPU_PAD_VALID, tmp);
	for (int j = 0; j < 136; j++)
		out136[j] = 0.0f;
	for (int i = 0; i < 256; i++)
		for (int j = 0; j < 136; j++)
			out136[j] += tmp[i] * n->fc_w[i * 136 + j];
	for (int j = 0; j < 136; j++)
		out136[j] += n->fc_b[j];
}

/* ======================================================================================== */
/* 128-d recognition ResNet (face-nets.md §4)                                               */
/* ======================================================================================== */


static const struct {
	const char *name;
	int cin, cout, down;
} rec_layout[GPU_REC_BLOCKS] = {
	{"conv32_1", 32, 32, 0},        {"conv32_2", 32, 32, 0},   {"conv32_3", 32, 32, 0},
	{"conv64_down", 32, 64, 1},     {"conv64_1", 64, 64, 0},   {"conv64_2", 64, 64, 0},
	{"conv64_3", 64, 64, 0},        {"conv128_down", 64, 128, 1}, {"conv128_1", 128, 128, 0},
	{"conv128_2", 128, 128, 0},     {"conv256_down", 128, 256, 1}, {"conv256_1", 256, 256, 0},
	{"conv256_2", 256, 256, 0},     {"conv256_down_out", 256, 256, 1},
};

static int rec_conv_get(struct rec_conv *c, const struct gpu_weights *w, const char *pre, int k,
			int cin, int cout, char *err, size_t errlen)
{
	int fs[4] = {k, k, cin, cout}, vs[1] = {cout};

	c->k = k;
	c->cin = cin;
	c->cout = cout;
	if (!(c->filt = getf(w, 4, fs, err, errlen, "%s/conv/filters", pre)) ||
	    !(c->bias = getf(w, 1, vs, err, errlen, "%s/conv/bias", pre)) ||
	    !(c->sw = getf(w, 1, vs, err, errlen, "%s/scale/weights", pre)) ||
	    !(c->sb = getf(w, 1, vs, err, errlen, "%s/scale/biases", pre)))
		return -EINVAL;
	return 0;
}

int gpu_rec_create(struct gpu_rec **out, const struct gpu_weights *w, char *err, size_t errlen)
{
	struct gpu_rec *n = calloc(1, sizeof(*n));
	char pre[64];
	int rc = -EINVAL;
	int nblk = 0;

	if (!n)
		return vg_errf(err, errlen, -ENOMEM, "recognition: out of memory");
	if (rec_conv_get(&n->stem, w, "conv32_down", 7, 3, 32, err, errlen))
		goto out_fail;
	for (int i = 0; i < GPU_REC_BLOCKS && rec_layout[i].name; i++, nblk++) {
		struct rec_block *b = &n->blk[i];

		b->down = rec_layout[i].down;
		snprintf(pre, sizeof(pre), "%s/conv1", rec_layout[i].name);
		if (rec_conv_get(&b->c1, w, pre, 3, rec_layout[i].cin, rec_layout[i].cout, err, errlen))
			goto out_fail;
		snprintf(pre, sizeof(pre), "%s/conv2", rec_layout[i].name);
		if (rec_conv_get(&b->c2, w, pre, 3, rec_layout[i].cout, rec_layout[i].cout, err, errlen))
			goto out_fail;
	}
	GET(n->fc, w, "fc", 256, 128);
	rc = -ENOMEM;
	for (int i = 0; i < 4; i++) {
		n->buf[i] = gpu_bio_alloc((size_t)GPU_REC_BATCH * 72 * 72 * 32 * sizeof(float));
		if (!n->buf[i]) {
			vg_errf(err, errlen, rc, "recognition: out of memory");
			goto out_fail;
		}
	}
	*out = n;
	return 0;

out_fail:
	gpu_rec_destroy(&n);
	return rc;
}

void gpu_rec_destroy(struct gpu_rec **net)
{
	struct gpu_rec *n = net ? *net : NULL;

	if (!n)
		return;
	for (int i = 0; i < 4; i++)
		gpu_bio_free(n->buf[i]);
	free(n);
	*net = NULL;
}

static void rec_conv_run(struct gpu_dnnl *dn, int nb, const struct rec_conv *rc, const float *in,
			 int h, int w, int stride, enum gpu_pad pad, enum gpu_act act, float *out, int *oh,
			 int *ow)
{
	struct gpu_conv c = {.filt = rc->filt, .bias = rc->bias, .mul = rc->sw, .add = rc->sb,
			     .k = rc->k, .cin = rc->cin, .cout = rc->cout, .stride = stride, .pad = pad,
			     .act = act};

	gpu_conv_run(dn, nb, &c, in, h, w, out, oh, ow);
}

void gpu_rec_forward(struct gpu_rec *n, struct gpu_dnnl *dn, const float *input, int nb, float *out128)
{
	static const float mean[3] = {122.782f, 117.001f, 104.298f};
	float *x = n->buf[0], *a = n->buf[1], *b = n->buf[2], *p = n->buf[3];
	int h = 150, w = 150, oh, ow, c = 3;

	/* the batch runs through oneDNN as one NHWC tensor of NB images; the elementwise steps
	 * below walk all of it, the pools and the merge go image by image */
	for (size_t i = 0; i < (size_t)nb * 150 * 150; i++)
		for (int ch = 0; ch < 3; ch++)
			a[i * 3 + ch] = (input[i * 3 + ch] - mean[ch]) / 255.0f;
	rec_conv_run(dn, nb, &n->stem, a, h, w, 2, GPU_PAD_VALID, GPU_ACT_RELU, b, &oh, &ow);   /* 72 */
	h = oh, w = ow, c = 32;
	for (int im = 0; im < nb; im++)
		gpu_maxpool_ref(b + (size_t)im * h * w * c, h, w, c, 3, 2, GPU_PAD_VALID,
				x + (size_t)im * 35 * 35 * c);   /* 35 */
	h = (h - 3) / 2 + 1, w = (w - 3) / 2 + 1;
	for (int i = 0; i < GPU_REC_BLOCKS && rec_layout[i].name; i++) {
		const struct rec_block *blk = &n->blk[i];

		if (!blk->down) {
			size_t cnt = (size_t)nb * h * w * c;

			rec_conv_run(dn, nb, &blk->c1, x, h, w, 1, GPU_PAD_SAME, GPU_ACT_RELU, a, &oh, &ow);
			rec_conv_run(dn, nb, &blk->c2, a, h, w, 1, GPU_PAD_SAME, GPU_ACT_NONE, b, &oh, &ow);
			for (size_t k = 0; k < cnt; k++) {
				float v = b[k] + x[k];
				x[k] = v > 0.0f ? v : 0.0f;
			}
		} else {
			int ah, aw, bh, bw, ph = h / 2, pw = w / 2, co = blk->c1.cout;

			rec_conv_run(dn, nb, &blk->c1, x, h, w, 2, GPU_PAD_VALID, GPU_ACT_RELU, a, &ah, &aw);
			rec_conv_run(dn, nb, &blk->c2, a, ah, aw, 1, GPU_PAD_SAME, GPU_ACT_NONE, b, &bh, &bw);
			for (int im = 0; im < nb; im++)
				gpu_avgpool_ref(x + (size_t)im * h * w * c, h, w, c, 2, 2, GPU_PAD_VALID,
						p + (size_t)im * ph * pw * c);
			/* out = relu((pooled || 0) + b_padded): b gets a zero row and column when the
			 * pooled skip is larger (8 -> 3 vs 4, 4 -> 1 vs 2: face-nets.md §4) */
			for (int im = 0; im < nb; im++) {
				float *xo = x + (size_t)im * ph * pw * co;
				const float *pi = p + (size_t)im * ph * pw * c;
				const float *bi = b + (size_t)im * bh * bw * co;

				for (int y = 0; y < ph; y++) {
					for (int xx = 0; xx < pw; xx++) {
						float *o = xo + ((size_t)y * pw + xx) * co;
						const float *pp = pi + ((size_t)y * pw + xx) * c;
						const float *bp = bi + ((size_t)y * bw + xx) * co;
						int inb = y < bh && xx < bw;

						for (int k = 0; k < co; k++) {
							float s = k < c ? pp[k] : 0.0f;
							float v = s + (inb ? bp[k] : 0.0f);
							o[k] = v > 0.0f ? v : 0.0f;
						}
					}
				}
			}
			h = ph, w = pw, c = co;
		}
	}
	/* mean over H,W then fc, no bias */
	for (int im = 0; im < nb; im++) {
		const float *xi = x + (size_t)im * h * w * c;
		float *o = out128 + (size_t)im * 128;

		for (int k = 0; k < c; k++) {
			float s = 0.0f;

			for (int i = 0; i < h * w; i++)
				s += xi[(size_t)i * c + k];
			a[k] = s / (float)(h * w);
		}
		for (int j = 0; j < 128; j++)
			o[j] = 0.0f;
		for (int k = 0; k < 256; k++)
			for (int j = 0; j < 128; j++)
				o[j] += a[k] * n->fc[k * 128 + j];
	}
}

/* ======================================================================================== */
/* tiny face detector (face-nets.md §8, tinyYolov2 runMobilenet)                           */
/* ======================================================================================== */

struct gpu_tiny {
	struct gpu_conv conv0, dw[6], pw[6], conv8;
	float *a, *b;
};

int gpu_tiny_create(struct gpu_tiny **out, const struct gpu_weights *w, char *err, size_t errlen)
{
	static const int ch[6] = {16, 32, 64, 128, 256, 512};
	struct gpu_tiny *n = calloc(1, sizeof(*n));
	int rc = -EINVAL;

	if (!n)
		return vg_errf(err, errlen, -ENOMEM, "tiny detector: out of memory");
	{
		int fs[4] = {3, 3, 3, 16}, bs[1] = {16};

		n->conv0 = (struct gpu_conv){.k = 3, .cin = 3, .cout = 16, .stride = 1, .pad = GPU_PAD_VALID,
					     .act = GPU_ACT_LEAKY};
		if (!(n->conv0.filt = getf(w, 4, fs, err, errlen, "conv0/filters")) ||
		    !(n->conv0.bias = getf(w, 1, bs, err, errlen, "conv0/bias")))
			goto out_fail;
	}
	for (int i = 1; i <= 5; i++) {
		int ds[4] = {3, 3, ch[i - 1], 1}, ps[4] = {1, 1, ch[i - 1], ch[i]}, bs[1] = {ch[i]};

		/* zero-pad 1 then a valid 3x3 = a 'same' 3x3 at stride 1 */
		n->dw[i] = (struct gpu_conv){.k = 3, .cin = ch[i - 1], .cout = ch[i - 1], .stride = 1,
					     .depthwise = 1, .pad = GPU_PAD_SAME};
		n->pw[i] = (struct gpu_conv){.k = 1, .cin = ch[i - 1], .cout = ch[i], .stride = 1,
					     .pad = GPU_PAD_VALID, .act = GPU_ACT_LEAKY};
		if (!(n->dw[i].filt = getf(w, 4, ds, err, errlen, "conv%d/depthwise_filter", i)) ||
		    !(n->pw[i].filt = getf(w, 4, ps, err, errlen, "conv%d/pointwise_filter", i)) ||
		    !(n->pw[i].bias = getf(w, 1, bs, err, errlen, "conv%d/bias", i)))
			goto out_fail;
	}
	{
		int fs[4] = {1, 1, 512, 25}, bs[1] = {25};

		n->conv8 = (struct gpu_conv){.k = 1, .cin = 512, .cout = 25, .stride = 1, .pad = GPU_PAD_VALID};
		if (!(n->conv8.filt = getf(w, 4, fs, err, errlen, "conv8/filters")) ||
		    !(n->conv8.bias = getf(w, 1, bs, err, errlen, "conv8/bias")))
			goto out_fail;
	}
	rc = -ENOMEM;
	n->a = gpu_bio_alloc((size_t)414 * 414 * 16 * sizeof(float));   /* the largest activation */
	n->b = gpu_bio_alloc((size_t)414 * 414 * 16 * sizeof(float));
	if (!n->a || !n->b) {
		vg_errf(err, errlen, rc, "tiny detector: out of memory");
		goto out_fail;
	}
	*out = n;
	return 0;

out_fail:
	gpu_tiny_destroy(&n);
	return rc;
}

void gpu_tiny_destroy(struct gpu_tiny **net)
{
	struct gpu_tiny *n = net ? *net : NULL;

	if (!n)
		return;
	gpu_bio_free(n->a);
	gpu_bio_free(n->b);
	free(n);
	*net = NULL;
}

void gpu_tiny_forward(struct gpu_tiny *n, struct gpu_dnnl *dn, const float *input, float *out)
{
	static const float mean[3] = {117.001f, 114.697f, 97.404f};
	static const int ch[6] = {16, 32, 64, 128, 256, 512};
	float *x = n->a, *y = n->b;
	int h = GPU_TINY_INPUT, w = GPU_TINY_INPUT, oh, ow, pt;

	for (size_t i = 0; i < (size_t)h * w; i++)
		for (int c = 0; c < 3; c++)
			y[i * 3 + c] = (input[i * 3 + c] - mean[c]) / 255.0f;
	gpu_conv_run(dn, 1, &n->conv0, y, h, w, x, &oh, &ow);   /* 414 */
	h = oh, w = ow;
	for (int i = 1; i <= 5; i++) {
		int s = 2;   /* maxpool 2x2/2 same before conv1..5 */

		gpu_maxpool_ref(x, h, w, ch[i - 1], 2, s, GPU_PAD_SAME, y);
		gpu_out_dim(h, 2, s, GPU_PAD_SAME, &oh, &pt);
		gpu_out_dim(w, 2, s, GPU_PAD_SAME, &ow, &pt);
		h = oh, w = ow;
		gpu_conv_run(dn, 1, &n->dw[i], y, h, w, x, &oh, &ow);
		gpu_conv_run(dn, 1, &n->pw[i], x, h, w, y, &oh, &ow);
		memcpy(x, y, (size_t)h * w * ch[i] * sizeof(float));
	}
	gpu_maxpool_ref(x, h, w, 512, 2, 1, GPU_PAD_SAME, y);   /* 2x2/1 same: 13 -> 13 */
	gpu_conv_run(dn, 1, &n->conv8, y, h, w, out, &oh, &ow);
}
