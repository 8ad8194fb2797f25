/*
 * oneDNN against the reference kernels, layer type by layer type, on random data with the
 * shapes and padding cases the nets use: 3x3/1 same, 3x3/2 same on an even input (padding only
 * bottom/right), 7x7/2 valid, 1x1, depthwise stride 1 and 2 with the folded batch-norm, and
 * every activation. The folding moves results by float rounding only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../gpu/gpu_int.h"
#include "vg_test.h"

static unsigned seed = 2024;

static float rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return (float)((seed >> 16) & 0x7fff) / 16384.0f - 1.0f;
}

static float *rnd_array(size_t n)
{
	float *a = malloc(n * sizeof(float));
	for (size_t i = 0; a && i < n; i++)
		a[i] = rnd();
	return a;
}

struct lcase {
	int h, w, cin, cout, k, stride, depthwise;
	enum gpu_pad pad;
	enum gpu_act act;
	int with_scale;
};

static void run_case(struct gpu_dnnl *d, const struct lcase *lc)
{
	int cout = lc->depthwise ? lc->cin : lc->cout;
	size_t nf = (size_t)lc->k * lc->k * lc->cin * (lc->depthwise ? 1 : lc->cout);
	float *in = rnd_array((size_t)lc->h * lc->w * lc->cin);
	float *filt = rnd_array(nf);
	float *bias = rnd_array(cout), *mul = rnd_array(cout), *add = rnd_array(cout);
	float *o_ref = calloc((size_t)lc->h * lc->w * cout + 1, sizeof(float));
	float *o_dnn = calloc((size_t)lc->h * lc->w * cout + 1, sizeof(float));
	struct gpu_conv c = {.filt = filt, .bias = bias, .mul = lc->with_scale ? mul : NULL,
			     .add = lc->with_scale ? add : NULL, .k = lc->k, .cin = lc->cin,
			     .cout = cout, .stride = lc->stride, .depthwise = lc->depthwise,
			     .pad = lc->pad, .act = lc->act};
	int oh, ow, oh2, ow2, bad = 0;
	double maxd = 0;

	if (!in || !filt || !bias || !mul || !add || !o_ref || !o_dnn) {
		CHECK(0);
		goto out;
	}
	gpu_conv_ref(1, &c, in, lc->h, lc->w, o_ref, &oh, &ow);
	CHECK_EQ_INT(gpu_dnnl_conv(d, 1, &c, in, lc->h, lc->w, o_dnn), 0);
	gpu_conv_run(d, 1, &c, in, lc->h, lc->w, o_dnn, &oh2, &ow2);   /* cached primitive, again */
	CHECK_EQ_INT(oh, oh2);
	CHECK_EQ_INT(ow, ow2);
	for (size_t i = 0; i < (size_t)oh * ow * cout; i++) {
		double diff = fabs((double)o_ref[i] - o_dnn[i]);
		if (diff > maxd)
			maxd = diff;
		if (diff > 1e-4 * (1 + fabs(o_ref[i])))
			bad++;
	}
	if (bad)
		fprintf(stderr, "case %dx%dx%d k%d s%d dw%d: %d values differ, max %.3g\n", lc->h, lc->w,
			lc->cin, lc->k, lc->stride, lc->depthwise, bad, maxd);
	CHECK_EQ_INT(bad, 0);
out:
	free(in);
	free(filt);
	free(bias);
	free(mul);
	free(add);
	free(o_ref);
	free(o_dnn);
}

int main(void)
{
	static const struct lcase cases[] = {
		{17, 17, 32, 64, 3, 1, 0, GPU_PAD_SAME, GPU_ACT_RELU, 1},     /* recognition residual */
		{8, 8, 128, 256, 3, 2, 0, GPU_PAD_VALID, GPU_ACT_RELU, 1},    /* residualDown 8 -> 3 */
		{30, 30, 3, 32, 7, 2, 0, GPU_PAD_VALID, GPU_ACT_RELU, 1},     /* stem */
		{16, 16, 3, 32, 3, 2, 0, GPU_PAD_SAME, GPU_ACT_RELU6, 0},     /* SSD conv_0, even input */
		{9, 9, 64, 48, 1, 1, 0, GPU_PAD_SAME, GPU_ACT_NONE, 0},       /* pointwise, predictors */
		{16, 16, 64, 64, 3, 1, 1, GPU_PAD_SAME, GPU_ACT_RELU6, 1},    /* SSD depthwise + BN */
		{16, 16, 64, 64, 3, 2, 1, GPU_PAD_SAME, GPU_ACT_RELU6, 1},    /* stride-2 depthwise */
		{7, 7, 32, 32, 3, 2, 1, GPU_PAD_SAME, GPU_ACT_NONE, 0},       /* odd input: pad both sides */
	};
	char err[256];

	/* a context per case: layers are cached by the addresses of their arrays, which the
	 * allocator may hand out again after a case frees them */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gpu_dnnl *d = NULL;

		if (gpu_dnnl_create(&d, 0, err, sizeof(err))) {
			fprintf(stderr, "test_dnnl: %s\n", err);
			return 1;
		}
		run_case(d, &cases[i]);
		CHECK_EQ_INT(gpu_dnnl_fallbacks(d), 0);
		gpu_dnnl_destroy(&d);
		CHECK(d == NULL);
	}
	return vg_test_exit();
}
