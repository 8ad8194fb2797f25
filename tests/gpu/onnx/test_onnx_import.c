/*
 * The ONNX importer on small models built here with protobuf-c: operators against values worked
 * out by hand or by a second route through the graph (BatchNormalization folded into the conv
 * against the same normalisation as Sub/Mul/Add nodes; Shape->Gather->Unsqueeze->Concat->Reshape
 * against Flatten; ReduceL2+Div against LpNormalization; Gemm with transB against MatMul), and
 * what a user sees on bad models: one line naming the file, node and operator, never a crash.
 * Model folders: vigil-model.json checked key by key, the ONNX file's sha256, the identity, and
 * (with face-api's weights fetched) a net whose output disagrees with descriptor_dim.
 *   test_onnx_import [SOURCE_ROOT] [--write-corpus DIR]   (DIR: the fuzz seeds, tests/fuzz/corpus/gpu_onnx)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gpu/onnx.pb-c.h"
#include "gpu_int.h"
#include "onnx/gpu_onnx.h"
#include "vg_base.h"
#include "vg_test.h"

/* ---- a small graph builder ----------------------------------------------------------------- */

struct model {
	Onnx__NodeProto *node[64];
	Onnx__TensorProto *init[64];
	size_t nn, ni;
	int seq;
	int opset;
};

static char *name_new(struct model *m, const char *stem)
{
	char *s = calloc(1, 48);

	snprintf(s, 48, "%s%d", stem, m->seq++);
	return s;
}

static const char *floats(struct model *m, int ndim, const int64_t *dims, const float *v)
{
	Onnx__TensorProto *t = calloc(1, sizeof(*t));
	size_t n = 1;

	onnx__tensor_proto__init(t);
	t->name = name_new(m, "k");
	t->n_dims = (size_t)ndim;
	t->dims = calloc((size_t)ndim + 1, sizeof(int64_t));
	for (int i = 0; i < ndim; i++)
		n *= (size_t)(t->dims[i] = dims[i]);
	t->has_data_type = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	t->n_float_data = n;
	t->float_data = calloc(n, sizeof(float));
	memcpy(t->float_data, v, n * sizeof(float));
	m->init[m->ni++] = t;
	return t->name;
}

static const char *ints(struct model *m, int64_t n, const int64_t *v)
{
	Onnx__TensorProto *t = calloc(1, sizeof(*t));

	onnx__tensor_proto__init(t);
	t->name = name_new(m, "i");
	t->n_dims = 1;
	t->dims = calloc(1, sizeof(int64_t));
	t->dims[0] = n;
	t->has_data_type = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
	t->has_raw_data = 1;   /* raw little-endian bytes, as exporters write them */
	t->raw_data.len = (size_t)n * 8;
	t->raw_data.data = calloc((size_t)n + 1, 8);
	memcpy(t->raw_data.data, v, (size_t)n * 8);
	m->init[m->ni++] = t;
	return t->name;
}

static Onnx__AttributeProto *a_ints(const char *name, int n, const int64_t *v)
{
	Onnx__AttributeProto *a = calloc(1, sizeof(*a));

	onnx__attribute_proto__init(a);
	a->name = (char *)name;
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	a->n_ints = (size_t)n;
	a->ints = calloc((size_t)n + 1, sizeof(int64_t));
	memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
	return a;
}

static Onnx__AttributeProto *a_int(const char *name, int64_t v)
{
	Onnx__AttributeProto *a = calloc(1, sizeof(*a));

	onnx__attribute_proto__init(a);
	a->name = (char *)name;
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	a->has_i = 1;
	a->i = v;
	return a;
}

/* A node OP(IN...) with attributes (NULL-terminated after the inputs' NULL); its output's name. */
static const char *node(struct model *m, const char *op, const char *const *in, Onnx__AttributeProto *const *attrs)
{
	Onnx__NodeProto *n = calloc(1, sizeof(*n));

	onnx__node_proto__init(n);
	n->op_type = (char *)op;
	n->name = name_new(m, op);
	while (in && in[n->n_input])
		n->n_input++;
	n->input = calloc(n->n_input + 1, sizeof(char *));
	if (n->n_input)
		memcpy(n->input, in, n->n_input * sizeof(char *));
	n->n_output = 1;
	n->output = calloc(1, sizeof(char *));
	n->output[0] = name_new(m, "t");
	while (attrs && attrs[n->n_attribute])
		n->n_attribute++;
	n->attribute = calloc(n->n_attribute + 1, sizeof(*n->attribute));
	if (n->n_attribute)
		memcpy(n->attribute, attrs, n->n_attribute * sizeof(*attrs));
	m->node[m->nn++] = n;
	return n->output[0];
}

#define IN(...) ((const char *const[]){__VA_ARGS__, NULL})
#define AT(...) ((Onnx__AttributeProto *const[]){__VA_ARGS__, NULL})

/* Pack M with input "x" [N,3,H,W] and output OUT; malloc'd bytes in *LEN. */
static uint8_t *pack(struct model *m, const char *out, int hw, size_t *len)
{
	Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT, *ops[1] = {&op};
	Onnx__ValueInfoProto in = ONNX__VALUE_INFO_PROTO__INIT, ou = ONNX__VALUE_INFO_PROTO__INIT;
	Onnx__ValueInfoProto *ins[1] = {&in}, *outs[1] = {&ou};
	Onnx__TypeProto ty = ONNX__TYPE_PROTO__INIT;
	Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
	Onnx__TensorShapeProto sh = ONNX__TENSOR_SHAPE_PROTO__INIT;
	Onnx__TensorShapeProto__Dimension d[4], *dp[4];
	uint8_t *buf;

	for (int i = 0; i < 4; i++) {
		onnx__tensor_shape_proto__dimension__init(&d[i]);
		dp[i] = &d[i];
		d[i].value_case = i ? ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
				    : ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
		if (i)
			d[i].dim_value = i == 1 ? 3 : hw;
		else
			d[i].dim_param = "batch";
	}
	sh.n_dim = 4;
	sh.dim = dp;
	tt.has_elem_type = 1;
	tt.elem_type = 1;
	tt.shape = &sh;
	ty.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	ty.tensor_type = &tt;
	in.name = "x";
	in.type = &ty;
	ou.name = (char *)out;
	op.has_version = 1;
	op.version = m->opset ? m->opset : 13;
	g.n_node = m->nn;
	g.node = m->node;
	g.n_initializer = m->ni;
	g.initializer = m->init;
	g.n_input = 1;
	g.input = ins;
	g.n_output = 1;
	g.output = outs;
	mp.has_ir_version = 1;
	mp.ir_version = 7;
	mp.n_opset_import = 1;
	mp.opset_import = ops;
	mp.graph = &g;
	*len = onnx__model_proto__get_packed_size(&mp);
	buf = malloc(*len + 1);
	onnx__model_proto__pack(&mp, buf);
	return buf;
}

static const struct gpu_onnx_input in8 = {.width = 8, .height = 8, .mean = {0, 0, 0}, .std = {1, 1, 1}};

static int load(struct gpu_onnx_net **n, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	return gpu_onnx_load(n, buf, len, "m.onnx", &in8, err, errlen);
}

static uint32_t seed = 99;
static float rnd(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)(seed >> 8) / 16777216.0f - 0.5f;
}

static void fill(float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = rnd();
}

/* Both the reference kernels and oneDNN run NET on IN (8x8x3, NB images) into OUT. */
static void run_both(struct gpu_onnx_net *net, const float *in, int nb, float *ref, float *dnn)
{
	struct gpu_dnnl *d = NULL;
	char err[256];

	gpu_onnx_forward(net, NULL, in, nb, ref);
	CHECK_EQ_INT(gpu_dnnl_create(&d, 0, err, sizeof(err)), 0);
	gpu_onnx_forward(net, d, in, nb, dnn);
	CHECK_EQ_INT(gpu_dnnl_fallbacks(d), 0);
	gpu_dnnl_destroy(&d);
}

static double maxdiff(const float *a, const float *b, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs((double)a[i] - b[i]));
	return m;
}

static const char *corpus;
static char manifest_detector[600] = "/nonexistent";

static void seed_corpus(const char *name, const uint8_t *buf, size_t len)
{
	char path[1024];
	FILE *f;

	if (!corpus)
		return;
	snprintf(path, sizeof(path), "%s/%s.onnx", corpus, name);
	if ((f = fopen(path, "wb"))) {
		fwrite(buf, 1, len, f);
		fclose(f);
	}
}

/* ---- the cases ------------------------------------------------------------------------------ */

/* Conv (pads 1 0 0 1, stride 2) + BatchNormalization folded, against the same BN as nodes;
 * RELU_FIRST: a Relu between them, so that the BN runs on its own. */
static const char *conv_bn_relu(struct model *m, int folded, int relu_first)
{
	static float w[4 * 3 * 3 * 3], b[4], sc[4], bb[4], mean[4], var[4];
	static int made;
	const int64_t wd[4] = {4, 3, 3, 3}, vd[1] = {4}, cd[3] = {4, 1, 1}, pads[4] = {1, 0, 0, 1}, st[2] = {2, 2};
	const char *y;

	if (!made++) {
		fill(w, 108), fill(b, 4), fill(sc, 4), fill(bb, 4), fill(mean, 4);
		for (int i = 0; i < 4; i++)
			var[i] = 0.5f + rnd();
	}
	y = node(m, "Conv", IN("x", floats(m, 4, wd, w), floats(m, 1, vd, b)), AT(a_ints("pads", 4, pads), a_ints("strides", 2, st)));
	if (relu_first)
		y = node(m, "Relu", IN(y), NULL);
	if (folded)
		return node(m, "BatchNormalization", IN(y, floats(m, 1, vd, sc), floats(m, 1, vd, bb), floats(m, 1, vd, mean), floats(m, 1, vd, var)), NULL);
	{
		float inv[4];

		for (int i = 0; i < 4; i++)
			inv[i] = sc[i] / sqrtf(var[i] + 1e-5f);
		/* the Identity is an alias: the Sub folds into the conv, the Mul and Add run as nodes */
		y = node(m, "Identity", IN(y), NULL);
		y = node(m, "Sub", IN(y, floats(m, 3, cd, mean)), NULL);
		y = node(m, "Mul", IN(y, floats(m, 3, cd, inv)), NULL);
		return node(m, "Add", IN(y, floats(m, 3, cd, bb)), NULL);
	}
}

static const char *conv_bn(struct model *m, int folded)
{
	return conv_bn_relu(m, folded, 0);
}

/* A grouped conv (3 groups of 2 -> 4 channels) against the dense conv of its block-diagonal
 * weights, with a bias and a folded Relu. */
static void test_grouped(void)
{
	static float x[2 * 8 * 8 * 6], wg[12 * 2 * 9], wd[12 * 6 * 9], b[12], r1[2 * 768], d1[2 * 768], r2[2 * 768], d2[2 * 768];
	const int64_t gd[4] = {12, 2, 3, 3}, dd[4] = {12, 6, 3, 3}, bd[1] = {12}, p1[4] = {1, 1, 1, 1}, two[2] = {2, 2};
	const int64_t pre[4] = {6, 3, 1, 1};
	static float pw[6 * 3];
	struct model a = {0}, c = {0};
	struct gpu_onnx_net *na = NULL, *nc = NULL;
	char err[512];
	size_t la, lc;
	uint8_t *ba, *bc;
	const char *y;

	fill(wg, VG_ARRAY_SIZE(wg));
	fill(b, 12);
	fill(pw, 18);
	memset(wd, 0, sizeof(wd));
	for (int co = 0; co < 12; co++)
		for (int ci = 0; ci < 2; ci++)
			memcpy(&wd[(co * 6 + (co / 4) * 2 + ci) * 9], &wg[(co * 2 + ci) * 9], 9 * sizeof(float));
	/* a 1x1 conv first makes the 6 channels the groups split */
	y = node(&a, "Conv", IN("x", floats(&a, 4, pre, pw)), NULL);
	y = node(&a, "Conv", IN(y, floats(&a, 4, gd, wg), floats(&a, 1, bd, b)), AT(a_int("group", 3), a_ints("pads", 4, p1), a_ints("strides", 2, two)));
	ba = pack(&a, node(&a, "Flatten", IN(node(&a, "Relu", IN(y), NULL)), NULL), 8, &la);
	y = node(&c, "Conv", IN("x", floats(&c, 4, pre, pw)), NULL);
	y = node(&c, "Conv", IN(y, floats(&c, 4, dd, wd), floats(&c, 1, bd, b)), AT(a_ints("pads", 4, p1), a_ints("strides", 2, two)));
	bc = pack(&c, node(&c, "Flatten", IN(node(&c, "Relu", IN(y), NULL)), NULL), 8, &lc);
	seed_corpus("grouped-conv", ba, la);
	CHECK_EQ_INT(load(&na, ba, la, err, sizeof(err)), 0);
	CHECK_EQ_INT(load(&nc, bc, lc, err, sizeof(err)), 0);
	if (na && nc) {
		CHECK_EQ_INT(gpu_onnx_output_dim(na), 12 * 4 * 4);
		fill(x, VG_ARRAY_SIZE(x));
		run_both(na, x, 2, r1, d1);
		run_both(nc, x, 2, r2, d2);
		CHECK(maxdiff(r1, r2, 2 * 192) < 1e-5);
		CHECK(maxdiff(r1, d1, 2 * 192) < 1e-5);
		CHECK(maxdiff(d1, d2, 2 * 192) < 1e-5);
	}
	gpu_onnx_free(&na);
	gpu_onnx_free(&nc);
	free(ba);
	free(bc);
}

/* A BatchNormalization after a Relu does not fold: it runs as an op, as the nodes would. */
static void test_bn_alone(void)
{
	static float x[8 * 8 * 3], r1[64], d1[64], r2[64], d2[64];
	struct model a = {0}, b = {0};
	struct gpu_onnx_net *na = NULL, *nb = NULL;
	char err[512];
	size_t la, lb;
	uint8_t *ba = pack(&a, node(&a, "Flatten", IN(conv_bn_relu(&a, 1, 1)), NULL), 8, &la);
	uint8_t *bb = pack(&b, node(&b, "Flatten", IN(conv_bn_relu(&b, 0, 1)), NULL), 8, &lb);

	CHECK_EQ_INT(load(&na, ba, la, err, sizeof(err)), 0);
	CHECK_EQ_INT(load(&nb, bb, lb, err, sizeof(err)), 0);
	if (na && nb) {
		fill(x, VG_ARRAY_SIZE(x));
		run_both(na, x, 1, r1, d1);
		run_both(nb, x, 1, r2, d2);
		CHECK(maxdiff(r1, r2, 64) < 1e-5 && maxdiff(r1, d1, 64) < 1e-5 && maxdiff(r2, d2, 64) < 1e-5);
		CHECK(na->nop - gpu_onnx_conv_count(na) >= 2);   /* the BN and the Flatten are ops of their own */
	}
	gpu_onnx_free(&na);
	gpu_onnx_free(&nb);
	free(ba);
	free(bb);
}

static void test_conv_bn(void)
{
	static float x[2 * 8 * 8 * 3], r1[2 * 64], d1[2 * 64], r2[2 * 64], d2[2 * 64];
	struct model a = {0}, b = {0};
	struct gpu_onnx_net *na = NULL, *nb = NULL;
	char err[512];
	size_t la, lb;
	uint8_t *ba, *bb;
	const char *ya, *yb;

	ya = node(&a, "Flatten", IN(conv_bn(&a, 1)), NULL);
	yb = node(&b, "Flatten", IN(conv_bn(&b, 0)), NULL);
	ba = pack(&a, ya, 8, &la);
	bb = pack(&b, yb, 8, &lb);
	seed_corpus("conv-bn-flatten", ba, la);
	CHECK_EQ_INT(load(&na, ba, la, err, sizeof(err)), 0);
	CHECK_EQ_INT(load(&nb, bb, lb, err, sizeof(err)), 0);
	if (!na || !nb)
		return;
	CHECK_EQ_INT(gpu_onnx_conv_count(na), 1);
	CHECK_EQ_INT(gpu_onnx_output_dim(na), 4 * 4 * 4);   /* (8 + 1 - 3) / 2 + 1 = 4: pads 1 top, 1 right */
	fill(x, VG_ARRAY_SIZE(x));
	run_both(na, x, 2, r1, d1);
	run_both(nb, x, 2, r2, d2);
	CHECK(maxdiff(r1, r2, 128) < 1e-5);
	CHECK(maxdiff(d1, r1, 128) < 1e-5);
	CHECK(maxdiff(d2, r2, 128) < 1e-5);
	/* the output's first value by hand: out(0,0) of channel 0 reads rows -1..1, columns 0..2 */
	{
		double s = 0;
		const float *w = a.init[0]->float_data, *bias = a.init[1]->float_data;
		const float *sc = a.init[2]->float_data, *bb2 = a.init[3]->float_data;
		const float *mean = a.init[4]->float_data, *var = a.init[5]->float_data;

		for (int ci = 0; ci < 3; ci++)
			for (int ky = 1; ky < 3; ky++)
				for (int kx = 0; kx < 3; kx++)
					s += (double)w[(ci * 3 + ky) * 3 + kx] * x[((ky - 1) * 8 + kx) * 3 + ci];
		s = (s + bias[0] - mean[0]) * sc[0] / sqrt(var[0] + 1e-5) + bb2[0];
		CHECK(fabs(s - r1[0]) < 1e-5);
	}
	gpu_onnx_free(&na);
	gpu_onnx_free(&nb);
	free(ba);
	free(bb);
}

/* A MobileFaceNet-like tail: depthwise conv, PRelu, residual Add, pools, Concat, Pad, then the
 * shape arithmetic exporters write before a Reshape, Gemm (transB), Dropout, normalisation. */
static uint8_t *tail_model(size_t *len, int via_shape, int norm_kind)
{
	static float dw[3 * 9], slope[3], pw[6 * 6], g[10 * 96], gb[10];
	static int made;
	const int64_t dwd[4] = {3, 1, 3, 3}, sd[3] = {3, 1, 1}, pwd[4] = {6, 6, 1, 1}, gd[2] = {10, 96}, gbd[1] = {10};
	const int64_t p1[4] = {1, 1, 1, 1}, k2[2] = {2, 2}, k3[2] = {3, 3}, s1[2] = {1, 1}, pads8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	struct model m = {0};
	const char *x, *y, *z;

	if (!made++)
		fill(dw, 27), fill(slope, 3), fill(pw, 36), fill(g, 960), fill(gb, 10);
	x = node(&m, "Conv", IN("x", floats(&m, 4, dwd, dw)), AT(a_int("group", 3), a_ints("pads", 4, p1)));
	x = node(&m, "PRelu", IN(x, floats(&m, 3, sd, slope)), NULL);
	x = node(&m, "Add", IN(x, "x"), NULL);                                   /* 3 x 8 x 8 */
	y = node(&m, "MaxPool", IN(x), AT(a_ints("kernel_shape", 2, k2), a_ints("strides", 2, k2)));   /* 4x4 */
	z = node(&m, "AveragePool", IN(x), AT(a_ints("kernel_shape", 2, k2), a_ints("strides", 2, k2)));
	x = node(&m, "Concat", IN(y, z), AT(a_int("axis", 1)));                  /* 6 x 4 x 4 */
	x = node(&m, "Conv", IN(x, floats(&m, 4, pwd, pw)), NULL);
	x = node(&m, "Relu", IN(x), NULL);
	x = node(&m, "Pad", IN(x, ints(&m, 8, pads8)), NULL);
	x = node(&m, "MaxPool", IN(x), AT(a_ints("kernel_shape", 2, k3), a_ints("strides", 2, s1), a_ints("pads", 4, p1)));
	/* 6 x 4 x 4 = 96 values per image */
	if (via_shape) {
		/* as PyTorch writes x.view(x.size(0), -1) */
		const int64_t ax0[1] = {0};
		const char *shape = node(&m, "Shape", IN(x), NULL);
		const char *idx = node(&m, "Constant", NULL, AT(a_int("value_int", 0)));
		const char *batch = node(&m, "Gather", IN(shape, idx), AT(a_int("axis", 0)));
		const char *rest = node(&m, "Unsqueeze", IN(node(&m, "Constant", NULL, AT(a_int("value_int", -1))), ints(&m, 1, ax0)), NULL);

		batch = node(&m, "Unsqueeze", IN(node(&m, "Identity", IN(batch), NULL), ints(&m, 1, ax0)), NULL);
		x = node(&m, "Reshape", IN(x, node(&m, "Concat", IN(batch, rest), AT(a_int("axis", 0)))), NULL);
		x = node(&m, "Gemm", IN(x, floats(&m, 2, gd, g), floats(&m, 1, gbd, gb)), AT(a_int("transB", 1)));
	} else {
		float gt[96 * 10];

		for (int i = 0; i < 10; i++)
			for (int j = 0; j < 96; j++)
				gt[j * 10 + i] = g[i * 96 + j];
		x = node(&m, "Flatten", IN(x), NULL);
		x = node(&m, "Add", IN(node(&m, "MatMul", IN(x, floats(&m, 2, (const int64_t[]){96, 10}, gt)), NULL),
				       floats(&m, 1, gbd, gb)), NULL);
	}
	x = node(&m, "Dropout", IN(x), NULL);
	if (norm_kind == 1)
		x = node(&m, "LpNormalization", IN(x), AT(a_int("axis", 1), a_int("p", 2)));
	else if (norm_kind == 2) {
		const int64_t ax1[1] = {1};

		x = node(&m, "Div", IN(x, node(&m, "ReduceL2", IN(x), AT(a_ints("axes", 1, ax1), a_int("keepdims", 1)))), NULL);
	}
	return pack(&m, x, 8, len);
}

static void test_tail(void)
{
	static float x[3 * 8 * 8 * 3], r[4][3 * 10], d[4][3 * 10];
	static const int variants[4][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 2}};
	char err[512];

	fill(x, VG_ARRAY_SIZE(x));
	for (int v = 0; v < 4; v++) {
		struct gpu_onnx_net *n = NULL;
		size_t len;
		uint8_t *buf = tail_model(&len, variants[v][0], variants[v][1]);
		char name[32];

		snprintf(name, sizeof(name), "tail-%d", v);
		seed_corpus(name, buf, len);
		if (load(&n, buf, len, err, sizeof(err))) {
			fprintf(stderr, "test_onnx_import: %s\n", err);
			CHECK(0);
			free(buf);
			continue;
		}
		CHECK_EQ_INT(gpu_onnx_output_dim(n), 10);
		run_both(n, x, 3, r[v], d[v]);
		CHECK(maxdiff(r[v], d[v], 30) < 1e-5);
		gpu_onnx_free(&n);
		free(buf);
	}
	/* Shape/Gather/Unsqueeze/Concat/Reshape + Gemm(transB) = Flatten + MatMul + Add */
	CHECK(maxdiff(r[0], r[1], 30) < 1e-5);
	/* LpNormalization = x / ReduceL2(x), of unit length */
	CHECK(maxdiff(r[2], r[3], 30) < 1e-6);
	for (int im = 0; im < 3; im++) {
		double s = 0, t = 0;

		for (int j = 0; j < 10; j++) {
			s += (double)r[2][im * 10 + j] * r[2][im * 10 + j];
			t += (double)r[1][im * 10 + j] * r[1][im * 10 + j];
		}
		CHECK(fabs(s - 1) < 1e-5);
		CHECK(fabs((double)r[2][im * 10] - r[1][im * 10] / sqrt(t)) < 1e-5);
	}
}

/* What a user sees: one line, naming the file and, where there is one, the node and operator. */
static void expect_refusal(const uint8_t *buf, size_t len, int want_rc, const char *want_text)
{
	struct gpu_onnx_net *n = NULL;
	char err[512] = "";
	int rc = load(&n, buf, len, err, sizeof(err));

	CHECK_EQ_INT(rc, want_rc);
	if (!strstr(err, want_text) || strchr(err, '\n'))
		fprintf(stderr, "test_onnx_import: got \"%s\", wanted \"%s\"\n", err, want_text);
	CHECK(strstr(err, want_text) != NULL && !strchr(err, '\n') && strncmp(err, "m.onnx: ", 8) == 0);
	CHECK(n == NULL);
}

static void test_refusals(void)
{
	const int64_t wd[4] = {4, 1, 3, 3}, big[2] = {3 * 8 * 8, 600};
	static float w[4 * 9], gw[192 * 600];
	struct model m;
	const char *y;
	uint8_t *buf;
	size_t len;

	m = (struct model){0};
	y = node(&m, "Relu", IN("x"), NULL);
	y = node(&m, "Softplus", IN(y), NULL);
	m.node[1]->name = "my\nsoft";   /* outside text stays on one line, printable */
	buf = pack(&m, y, 8, &len);
	seed_corpus("unsupported-op", buf, len);
	expect_refusal(buf, len, -ENOTSUP, "m.onnx: node 'my?soft' (op Softplus): operator not supported");
	expect_refusal(buf, len / 2, -EBADMSG, "not an ONNX model");
	expect_refusal((const uint8_t *)"", 0, -EBADMSG, "no graph");
	free(buf);

	m = (struct model){0};
	y = node(&m, "Relu", IN("nowhere"), NULL);
	buf = pack(&m, y, 8, &len);
	expect_refusal(buf, len, -EINVAL, "(op Relu): input 'nowhere' is not made by an earlier node");
	free(buf);

	m = (struct model){0};   /* 3 channels do not split into 2 groups */
	y = node(&m, "Conv", IN("x", floats(&m, 4, wd, w)), AT(a_int("group", 2)));
	buf = pack(&m, y, 8, &len);
	expect_refusal(buf, len, -EINVAL, "(op Conv): group 2 on 3 channels");
	free(buf);

	m = (struct model){0};   /* a descriptor longer than GPU_DESCRIPTOR_MAX */
	y = node(&m, "MatMul", IN(node(&m, "Flatten", IN("x"), NULL), floats(&m, 2, big, gw)), NULL);
	buf = pack(&m, y, 8, &len);
	expect_refusal(buf, len, -ENOTSUP, "an output of 600 x 1 x 1 values (a descriptor of at most 512)");
	free(buf);

	m = (struct model){.opset = 99};
	y = node(&m, "Relu", IN("x"), NULL);
	buf = pack(&m, y, 8, &len);
	expect_refusal(buf, len, -ENOTSUP, "opset 99");
	free(buf);

	m = (struct model){0};   /* the input itself is no descriptor */
	buf = pack(&m, "x", 8, &len);
	expect_refusal(buf, len, -EINVAL, "the output is not computed from the input");
	free(buf);

	m = (struct model){0};
	{
		const int64_t ax[1] = {0};
		const char *u = node(&m, "Unsqueeze", IN("x", ints(&m, 1, ax)), NULL);

		buf = pack(&m, u, 8, &len);
	}
	expect_refusal(buf, len, -ENOTSUP, "(op Unsqueeze): Unsqueeze of an activation");
	free(buf);
}

static void write_text(const char *dir, const char *name, const void *data, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f) {
		CHECK(fwrite(data, 1, len, f) == len);
		fclose(f);
	}
}

/* A manifest for m.onnx with KEY's value replaced by VALUE (KEY NULL: as it is), EXTRA appended. */
static void write_manifest(const char *dir, const char *sha, const char *key, const char *value, const char *extra)
{
	const char *keys[] = {"id", "onnx", "sha256", "descriptor_dim", "metric", "threshold", "detector"};
	char vals[7][640], text[8192];

	snprintf(vals[0], sizeof(vals[0]), "\"tiny-test.1\"");
	snprintf(vals[1], sizeof(vals[1]), "\"m.onnx\"");
	snprintf(vals[2], sizeof(vals[2]), "\"%s\"", sha);
	snprintf(vals[3], sizeof(vals[3]), "64");
	snprintf(vals[4], sizeof(vals[4]), "\"cosine\"");
	snprintf(vals[5], sizeof(vals[5]), "0.4");
	snprintf(vals[6], sizeof(vals[6]), "\"%s\"", manifest_detector);
	for (int i = 0; i < 7; i++)
		if (key && strcmp(keys[i], key) == 0)
			snprintf(vals[i], sizeof(vals[i]), "%s", value);
	snprintf(text, sizeof(text),
		 "{\"id\": %s, \"onnx\": %s, \"sha256\": %s, \"descriptor_dim\": %s, \"metric\": %s,"
		 " \"threshold\": %s, \"detector\": %s,"
		 " \"input\": {\"width\": 8, \"height\": 8, \"mean\": [0, 0, 0], \"std\": [1, 1, 1], \"channel_order\": \"bgr\"}%s}",
		 vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], extra ? extra : "");
	write_text(dir, "vigil-model.json", text, strlen(text));
}

static void expect_identify(const char *dir, int want_rc, const char *want_text)
{
	struct gpu_model_info info;
	char err[512] = "";
	int rc = gpu_model_identify(dir, &info, err, sizeof(err));

	CHECK_EQ_INT(rc, want_rc);
	if (!strstr(err, want_text))
		fprintf(stderr, "test_onnx_import: got \"%s\", wanted \"%s\"\n", err, want_text);
	CHECK(strstr(err, want_text) != NULL && !strchr(err, '\n'));
}

static void test_model_folder(const char *root)
{
	struct model m = {0};
	struct gpu_model_info info;
	unsigned char d[crypto_hash_sha256_BYTES];
	char dir[512], sha[65], err[512], path[1100];
	const char *y = node(&m, "Flatten", IN(conv_bn(&m, 1)), NULL);
	size_t len;
	uint8_t *buf = pack(&m, y, 8, &len);

	if (!vg_test_tmpdir("onnx-folder", dir, sizeof(dir))) {
		CHECK(0);
		return;
	}
	if (root)
		snprintf(manifest_detector, sizeof(manifest_detector), "%s/fetched/face-api-1.7.15/model", root);
	write_text(dir, "m.onnx", buf, len);
	crypto_hash_sha256(d, buf, len);
	sodium_bin2hex(sha, sizeof(sha), d, sizeof(d));

	write_manifest(dir, sha, NULL, NULL, NULL);
	CHECK_EQ_INT(gpu_model_identify(dir, &info, err, sizeof(err)), 0);
	CHECK_EQ_STR(info.id, "tiny-test.1");
	CHECK_EQ_STR(info.digest, sha);
	CHECK(info.descriptor_dim == 64 && info.metric == 1 && info.threshold == 0.4);

	write_manifest(dir, "0000000000000000000000000000000000000000000000000000000000000000", NULL, NULL, NULL);
	expect_identify(dir, -EBADMSG, "m.onnx: sha256 is ");
	write_manifest(dir, sha, NULL, NULL, ", \"colour\": 1");
	expect_identify(dir, -EINVAL, "vigil-model.json: an unknown key");
	write_manifest(dir, sha, "id", "\"face-api-1.7.15\"", NULL);
	expect_identify(dir, -EINVAL, "vigil-model.json: id: ");
	write_manifest(dir, sha, "onnx", "\"../m.onnx\"", NULL);
	expect_identify(dir, -EINVAL, "onnx: the name of a file beside the manifest");
	write_manifest(dir, sha, "descriptor_dim", "513", NULL);
	expect_identify(dir, -EINVAL, "descriptor_dim: 1..512");
	write_manifest(dir, sha, "metric", "\"hamming\"", NULL);
	expect_identify(dir, -EINVAL, "metric:");
	write_text(dir, "vigil-model.json", "{\"id\": ", 8);
	expect_identify(dir, -EBADMSG, "vigil-model.json: line 1");

	/* the net gives 64 values: a manifest saying 65 fails at open (face-api's detector needed) */
	snprintf(path, sizeof(path), "%s/ssd_mobilenetv1_model-weights_manifest.json", manifest_detector);
	if (root && access(path, F_OK) == 0) {
		struct gpu_model *gm = NULL;

		write_manifest(dir, sha, "descriptor_dim", "65", NULL);
		CHECK_EQ_INT(gpu_model_open(&gm, dir, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "the net gives 64 values per face, descriptor_dim says 65") != NULL);
		write_manifest(dir, sha, NULL, NULL, NULL);
		CHECK_EQ_INT(gpu_model_open(&gm, dir, err, sizeof(err)), 0);
		gpu_model_close(&gm);
	}
	snprintf(path, sizeof(path), "%s/m.onnx", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/vigil-model.json", dir);
	unlink(path);
	rmdir(dir);
	free(buf);
}

int main(int argc, char **argv)
{
	const char *root = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--write-corpus") == 0 && i + 1 < argc)
			corpus = argv[++i];
		else
			root = argv[i];
	}
	test_conv_bn();
	test_bn_alone();
	test_grouped();
	test_tail();
	test_refusals();
	test_model_folder(root);
	return vg_test_exit();
}
