/*
 * Running an imported ONNX net (gpu_onnx.h): the ops gpu_onnx_load.c planned, in order, on the
 * scratch slots it sized. Convolutions go through gpu_conv_run, the pools through the reference
 * pools, exactly as the built-in nets call them; the element-wise steps are written out here in
 * the order the built-in descriptor net rounds them (a + b, then ReLU; the mean as a sum then
 * one division; the matrix product summed over k from 0), so that an ONNX export of face-api's
 * net gives its descriptors bit for bit. One thread at a time per net; never allocates.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gpu_onnx.h"

static float *act_buf(struct gpu_onnx_net *n, int a)
{
	return n->act[a].slot < 0 ? n->norm : n->slot[n->act[a].slot];
}

static size_t act_floats(const struct onnx_act *a)
{
	return (size_t)a->c * a->h * a->w;
}

static float binop(enum onnx_binop op, float a, float b)
{
	switch (op) {
	case ONNX_BIN_ADD:
		return a + b;
	case ONNX_BIN_SUB:
		return a - b;
	case ONNX_BIN_MUL:
		return a * b;
	case ONNX_BIN_DIV:
		return a / b;
	}
	return 0.0f;
}

/* Two activations of one shape, or one of them a single value per image. */
static void run_binary_acts(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]], *B = &n->act[o->in[1]];
	const float *a = act_buf(n, o->in[0]), *b = act_buf(n, o->in[1]);
	float *y = act_buf(n, o->out);
	size_t na = act_floats(A), nbf = act_floats(B), ny = na > nbf ? na : nbf;

	for (int im = 0; im < nb; im++)
		for (size_t i = 0; i < ny; i++)
			y[im * ny + i] = binop(o->bin, a[im * na + (na == 1 ? 0 : i)], b[im * nbf + (nbf == 1 ? 0 : i)]);
}

/* An activation and a constant, scalar or one value per channel (channels innermost). */
static void run_binary_const(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]];
	const float *x = act_buf(n, o->in[0]);
	float *y = act_buf(n, o->out);
	size_t pixels = (size_t)nb * A->h * A->w;
	int c = A->c;

	for (size_t p = 0; p < pixels; p++, x += c, y += c)
		for (int ch = 0; ch < c; ch++) {
			float k = o->k[o->kn == 1 ? 0 : ch];

			y[ch] = o->k_first ? binop(o->bin, k, x[ch]) : binop(o->bin, x[ch], k);
		}
}

/*
 * x < 0 ? x * k : x, as a select of bits: gcc -O3 (SSE2) vectorises this and not the ternary,
 * which ran 35x slower (200 vs 6 us for 64 x 28 x 28 on the dev VM): PReLU took longer than all
 * of MobileFaceNet's convolutions on oneDNN. Same result bit for bit.
 */
static inline float prelu(float x, float k)
{
	float s = x * k;
	uint32_t xb, sb, m = 0u - (uint32_t)(x < 0.0f);

	memcpy(&xb, &x, sizeof(xb));
	memcpy(&sb, &s, sizeof(sb));
	xb = (sb & m) | (xb & ~m);
	memcpy(&x, &xb, sizeof(x));
	return x;
}

/*
 * ReLU, PReLU and a lone BatchNormalization, pixel by pixel with the channels innermost (no
 * division per element: a modulo per value made PReLU cost more than MobileFaceNet's convs).
 */
static void run_pointwise(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]];
	const float *restrict x = act_buf(n, o->in[0]);
	float *restrict y = act_buf(n, o->out);
	const float *restrict k = o->k, *restrict pre = o->pre, *restrict mul = o->mul, *restrict post = o->post;
	size_t pixels = (size_t)nb * A->h * A->w;
	int c = A->c;

	for (size_t p = 0; p < pixels; p++, x += c, y += c) {
		if (o->kind == ONNX_OP_RELU) {
			for (int ch = 0; ch < c; ch++)
				y[ch] = x[ch] > 0.0f ? x[ch] : 0.0f;
		} else if (o->kind == ONNX_OP_PRELU) {   /* K: one slope per channel (expanded at load) */
			for (int ch = 0; ch < c; ch++)
				y[ch] = prelu(x[ch], k[ch]);
		} else {
			for (int ch = 0; ch < c; ch++)
				y[ch] = (x[ch] + pre[ch]) * mul[ch] + post[ch];
		}
	}
}

static void run_pool(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]], *Y = &n->act[o->out];
	const float *x = act_buf(n, o->in[0]);
	float *y = act_buf(n, o->out);

	for (int im = 0; im < nb; im++) {
		const float *xi = x + (size_t)im * act_floats(A);
		float *yi = y + (size_t)im * act_floats(Y);

		if (o->kind == ONNX_OP_MAXPOOL)
			gpu_maxpool_ref(xi, A->h, A->w, A->c, o->pool_k, o->pool_s, o->pool_pad, yi);
		else
			gpu_avgpool_ref(xi, A->h, A->w, A->c, o->pool_k, o->pool_s, o->pool_pad, yi);
	}
}

/* The mean over H x W as the built-in net takes it: a sum in pixel order, then one division. */
static void run_globalavg(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]];
	const float *x = act_buf(n, o->in[0]);
	float *y = act_buf(n, o->out);
	int hw = A->h * A->w;

	for (int im = 0; im < nb; im++) {
		const float *xi = x + (size_t)im * act_floats(A);

		for (int k = 0; k < A->c; k++) {
			float s = 0.0f;

			for (int i = 0; i < hw; i++)
				s += xi[(size_t)i * A->c + k];
			y[(size_t)im * A->c + k] = s / (float)hw;
		}
	}
}

static void run_gemm(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const float *x = act_buf(n, o->in[0]);
	float *y = act_buf(n, o->out);

	for (int im = 0; im < nb; im++) {
		const float *xi = x + (size_t)im * o->gemm_k;
		float *yi = y + (size_t)im * o->gemm_m;

		for (int j = 0; j < o->gemm_m; j++)
			yi[j] = 0.0f;
		for (int k = 0; k < o->gemm_k; k++)
			for (int j = 0; j < o->gemm_m; j++)
				yi[j] += xi[k] * o->w[(size_t)k * o->gemm_m + j];
		if (o->bias)
			for (int j = 0; j < o->gemm_m; j++)
				yi[j] += o->bias[j];
	}
}

/* NHWC storage to ONNX's NCHW element order, as Flatten and Reshape see it. */
static void run_flatten(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]];
	const float *x = act_buf(n, o->in[0]);
	float *y = act_buf(n, o->out);
	size_t per = act_floats(A), hw = (size_t)A->h * A->w;

	for (int im = 0; im < nb; im++)
		for (size_t p = 0; p < hw; p++)
			for (int c = 0; c < A->c; c++)
				y[im * per + (size_t)c * hw + p] = x[im * per + p * (size_t)A->c + c];
}

static void run_concat(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]], *B = &n->act[o->in[1]];
	const float *a = act_buf(n, o->in[0]), *b = act_buf(n, o->in[1]);
	float *y = act_buf(n, o->out);
	size_t pixels = (size_t)nb * A->h * A->w;

	for (size_t p = 0; p < pixels; p++) {
		memcpy(y + p * (size_t)(A->c + B->c), a + p * (size_t)A->c, (size_t)A->c * sizeof(float));
		memcpy(y + p * (size_t)(A->c + B->c) + A->c, b + p * (size_t)B->c, (size_t)B->c * sizeof(float));
	}
}

static void run_pad(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]], *Y = &n->act[o->out];
	const float *x = act_buf(n, o->in[0]);
	float *y = act_buf(n, o->out);

	memset(y, 0, (size_t)nb * act_floats(Y) * sizeof(float));
	for (int im = 0; im < nb; im++)
		for (int r = 0; r < A->h; r++)
			for (int c = 0; c < A->w; c++)
				memcpy(y + (size_t)im * act_floats(Y) +
					       (((size_t)(r + o->pad[1]) * Y->w + c + o->pad[2]) * Y->c + o->pad[0]),
				       x + (size_t)im * act_floats(A) + ((size_t)r * A->w + c) * A->c,
				       (size_t)A->c * sizeof(float));
}

static void run_norm(struct gpu_onnx_net *n, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]];
	const float *x = act_buf(n, o->in[0]);
	float *y = act_buf(n, o->out);
	size_t per = act_floats(A);

	for (int im = 0; im < nb; im++) {
		const float *xi = x + im * per;
		float s = 0.0f, norm;

		for (size_t i = 0; i < per; i++)
			s += xi[i] * xi[i];
		norm = sqrtf(s);
		if (o->kind == ONNX_OP_REDUCEL2) {
			y[im] = norm;
			continue;
		}
		for (size_t i = 0; i < per; i++)
			y[im * per + i] = norm > 0.0f ? xi[i] / norm : 0.0f;
	}
}

static void run_op(struct gpu_onnx_net *n, struct gpu_dnnl *d, const struct onnx_op *o, int nb)
{
	const struct onnx_act *A = &n->act[o->in[0]];
	int oh, ow;

	switch (o->kind) {
	case ONNX_OP_CONV:
		gpu_conv_run(d, nb, &o->conv, act_buf(n, o->in[0]), A->h, A->w, act_buf(n, o->out), &oh, &ow);
		break;
	case ONNX_OP_BINARY:
		if (o->in[1] >= 0)
			run_binary_acts(n, o, nb);
		else
			run_binary_const(n, o, nb);
		break;
	case ONNX_OP_AFFINE:
	case ONNX_OP_PRELU:
	case ONNX_OP_RELU:
		run_pointwise(n, o, nb);
		break;
	case ONNX_OP_MAXPOOL:
	case ONNX_OP_AVGPOOL:
		run_pool(n, o, nb);
		break;
	case ONNX_OP_GLOBALAVG:
		run_globalavg(n, o, nb);
		break;
	case ONNX_OP_GEMM:
		run_gemm(n, o, nb);
		break;
	case ONNX_OP_FLATTEN:
		run_flatten(n, o, nb);
		break;
	case ONNX_OP_CONCAT:
		run_concat(n, o, nb);
		break;
	case ONNX_OP_PAD:
		run_pad(n, o, nb);
		break;
	case ONNX_OP_REDUCEL2:
	case ONNX_OP_LPNORM:
		run_norm(n, o, nb);
		break;
	}
}

void gpu_onnx_forward(struct gpu_onnx_net *n, struct gpu_dnnl *d, const float *rgb, int nb, float *out)
{
	const struct gpu_onnx_input *in = &n->in;
	size_t pixels;

	if (nb < 1 || nb > GPU_ONNX_MAX_BATCH)
		return;
	pixels = (size_t)nb * in->width * in->height;
	/* (x - mean) / std per channel, the channels in the net's order (the built-in net's order
	 * of operations, so that face-api's mean and 255 give its bits) */
	for (size_t i = 0; i < pixels; i++)
		for (int c = 0; c < 3; c++) {
			int src = in->bgr ? 2 - c : c;

			n->norm[i * 3 + c] = (rgb[i * 3 + src] - in->mean[c]) / in->std[c];
		}
	for (int i = 0; i < n->nop; i++)
		if (!n->op[i].dead)
			run_op(n, d, &n->op[i], nb);
	memcpy(out, act_buf(n, n->output), (size_t)nb * n->out_dim * sizeof(float));
}

unsigned gpu_onnx_output_dim(const struct gpu_onnx_net *n)
{
	return n ? n->out_dim : 0;
}

int gpu_onnx_conv_count(const struct gpu_onnx_net *n)
{
	int c = 0;

	for (int i = 0; n && i < n->nop; i++)
		c += !n->op[i].dead && n->op[i].kind == ONNX_OP_CONV;
	return c;
}
