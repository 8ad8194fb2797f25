/*
 * onnx-export-faceapi: write face-api's recognition net (face_recognition_model, face-nets.md §4)
 * as an ONNX model folder, layer for layer as face-api runs it: Conv, the per-channel scale as
 * Mul + Add, Relu, MaxPool, residual Add, AveragePool, the zero Pad of residualDown's quirks,
 * GlobalAveragePool, Flatten, MatMul. The input normalisation ((x - mean) / 255) goes in the
 * manifest, which is how vigil-model.json describes every model's input.
 *
 *   onnx-export-faceapi FACE_API_MODEL_DIR OUT_DIR
 *
 * writes OUT_DIR/face_recognition.onnx and OUT_DIR/vigil-model.json (id "faceapi-onnx", its
 * sha256, "detector" naming FACE_API_MODEL_DIR). The weights are read through gpu/'s own loader,
 * so the ONNX file holds the very floats the built-in net runs: tests/gpu/onnx/test_onnx_faceapi
 * checks that the imported net gives the built-in descriptors bit for bit. The tests run it in
 * their set-up into the build directory; the weights are never committed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gpu/onnx.pb-c.h"
#include "gpu_int.h"

#define MAX_NODES 256
#define MAX_INITS 256

static Onnx__NodeProto *nodes[MAX_NODES];
static Onnx__TensorProto *inits[MAX_INITS];
static size_t nnodes, ninits;
static int next_value;

static void *xcalloc(size_t n, size_t s)
{
	void *p = calloc(n, s);

	if (!p) {
		fprintf(stderr, "onnx-export-faceapi: out of memory\n");
		exit(1);
	}
	return p;
}

static char *fresh_name(const char *stem)
{
	char *s = xcalloc(64, 1);

	snprintf(s, 64, "%s_%d", stem, next_value++);
	return s;
}

/* An initializer of float data (copied as raw little-endian bytes) with dims D. */
static char *init_floats(const char *stem, const float *data, int ndim, const int64_t *d)
{
	Onnx__TensorProto *t = xcalloc(1, sizeof(*t));
	size_t n = 1;

	onnx__tensor_proto__init(t);
	t->name = fresh_name(stem);
	t->n_dims = (size_t)ndim;
	t->dims = xcalloc((size_t)ndim, sizeof(int64_t));
	for (int i = 0; i < ndim; i++) {
		t->dims[i] = d[i];
		n *= (size_t)d[i];
	}
	t->has_data_type = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	t->has_raw_data = 1;
	t->raw_data.len = n * sizeof(float);
	t->raw_data.data = xcalloc(n, sizeof(float));
	memcpy(t->raw_data.data, data, n * sizeof(float));
	inits[ninits++] = t;
	return t->name;
}

static char *init_ints(const char *stem, const int64_t *data, int64_t n)
{
	Onnx__TensorProto *t = xcalloc(1, sizeof(*t));

	onnx__tensor_proto__init(t);
	t->name = fresh_name(stem);
	t->n_dims = 1;
	t->dims = xcalloc(1, sizeof(int64_t));
	t->dims[0] = n;
	t->has_data_type = 1;
	t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
	t->n_int64_data = (size_t)n;
	t->int64_data = xcalloc((size_t)n, sizeof(int64_t));
	memcpy(t->int64_data, data, (size_t)n * sizeof(int64_t));
	inits[ninits++] = t;
	return t->name;
}

static Onnx__AttributeProto *attr_ints(const char *name, int n, const int64_t *v)
{
	Onnx__AttributeProto *a = xcalloc(1, sizeof(*a));

	onnx__attribute_proto__init(a);
	a->name = (char *)name;
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	a->n_ints = (size_t)n;
	a->ints = xcalloc((size_t)n, sizeof(int64_t));
	memcpy(a->ints, v, (size_t)n * sizeof(int64_t));
	return a;
}

/* A node OP on inputs IN (NIN), with NATTR attributes; returns the name of its one output. */
static char *node(const char *op, int nin, const char **in, int nattr, Onnx__AttributeProto **attrs)
{
	Onnx__NodeProto *n = xcalloc(1, sizeof(*n));

	onnx__node_proto__init(n);
	n->op_type = (char *)op;
	n->name = fresh_name(op);
	n->n_input = (size_t)nin;
	n->input = xcalloc((size_t)nin, sizeof(char *));
	for (int i = 0; i < nin; i++)
		n->input[i] = (char *)in[i];
	n->n_output = 1;
	n->output = xcalloc(1, sizeof(char *));
	n->output[0] = fresh_name("t");
	n->n_attribute = (size_t)nattr;
	n->attribute = attrs;
	nodes[nnodes++] = n;
	return n->output[0];
}

static char *unary(const char *op, const char *x)
{
	return node(op, 1, &x, 0, NULL);
}

static char *binary(const char *op, const char *a, const char *b)
{
	const char *in[2] = {a, b};

	return node(op, 2, in, 0, NULL);
}

static const struct gpu_weights *W;

static const float *get(const char *name, int ndim, const int *shape)
{
	char err[256];
	const float *p = gpu_weights_get(W, name, ndim, shape, err, sizeof(err));

	if (!p) {
		fprintf(stderr, "onnx-export-faceapi: %s\n", err);
		exit(1);
	}
	return p;
}

/* face-api's convLayer: conv (+bias), then * scale/weights + scale/biases, optional ReLU. */
static char *conv_layer(const char *x, const char *pre, int k, int cin, int cout, int stride, int same, int relu)
{
	char name[128];
	int fs[4] = {k, k, cin, cout}, vs[1] = {cout};
	const float *hwio, *bias, *sw, *sb;
	float *oihw = xcalloc((size_t)k * k * cin * cout, sizeof(float));
	int64_t wd[4] = {cout, cin, k, k}, vd[1] = {cout}, cd[3] = {cout, 1, 1};
	int64_t pad = same ? (k - 1) / 2 : 0;   /* 3x3/1 SAME pads 1 on every side */
	int64_t ks[2] = {k, k}, st[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad};
	Onnx__AttributeProto **attrs = xcalloc(3, sizeof(*attrs));
	const char *in[3];
	char *y;

	snprintf(name, sizeof(name), "%s/conv/filters", pre);
	hwio = get(name, 4, fs);
	snprintf(name, sizeof(name), "%s/conv/bias", pre);
	bias = get(name, 1, vs);
	snprintf(name, sizeof(name), "%s/scale/weights", pre);
	sw = get(name, 1, vs);
	snprintf(name, sizeof(name), "%s/scale/biases", pre);
	sb = get(name, 1, vs);
	for (int co = 0; co < cout; co++)
		for (int ci = 0; ci < cin; ci++)
			for (int ky = 0; ky < k; ky++)
				for (int kx = 0; kx < k; kx++)
					oihw[(((size_t)co * cin + ci) * k + ky) * k + kx] =
						hwio[(((size_t)ky * k + kx) * cin + ci) * cout + co];
	attrs[0] = attr_ints("kernel_shape", 2, ks);
	attrs[1] = attr_ints("strides", 2, st);
	attrs[2] = attr_ints("pads", 4, pads);
	in[0] = x;
	in[1] = init_floats("w", oihw, 4, wd);
	in[2] = init_floats("b", bias, 1, vd);
	y = node("Conv", 3, in, 3, attrs);
	y = binary("Mul", y, init_floats("scale_w", sw, 3, cd));
	y = binary("Add", y, init_floats("scale_b", sb, 3, cd));
	free(oihw);
	return relu ? unary("Relu", y) : y;
}

static char *pool(const char *op, const char *x, int k, int s)
{
	int64_t ks[2] = {k, k}, st[2] = {s, s};
	Onnx__AttributeProto **attrs = xcalloc(2, sizeof(*attrs));

	attrs[0] = attr_ints("kernel_shape", 2, ks);
	attrs[1] = attr_ints("strides", 2, st);
	return node(op, 1, &x, 2, attrs);
}

/* Zeros appended after the channels (DC), rows (DH) and columns (DW). */
static char *pad_after(const char *x, int dc, int dh, int dw)
{
	int64_t p[8] = {0, 0, 0, 0, 0, dc, dh, dw};
	const char *in[2] = {x, init_ints("pads", p, 8)};

	return node("Pad", 2, in, 0, NULL);
}

static const struct {
	const char *name;
	int cin, cout, down;
} blocks[] = {
	{"conv32_1", 32, 32, 0},     {"conv32_2", 32, 32, 0},     {"conv32_3", 32, 32, 0},
	{"conv64_down", 32, 64, 1},  {"conv64_1", 64, 64, 0},     {"conv64_2", 64, 64, 0},
	{"conv64_3", 64, 64, 0},     {"conv128_down", 64, 128, 1}, {"conv128_1", 128, 128, 0},
	{"conv128_2", 128, 128, 0},  {"conv256_down", 128, 256, 1}, {"conv256_1", 256, 256, 0},
	{"conv256_2", 256, 256, 0},  {"conv256_down_out", 256, 256, 1},
};

/* The whole net on a 150 x 150 input; returns the output's name. */
static char *build_net(const char *x)
{
	int side = 150;
	char pre[64];

	x = conv_layer(x, "conv32_down", 7, 3, 32, 2, 0, 1);
	side = (side - 7) / 2 + 1;
	x = pool("MaxPool", x, 3, 2);
	side = (side - 3) / 2 + 1;
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		const char *a, *b;

		snprintf(pre, sizeof(pre), "%s/conv1", blocks[i].name);
		a = conv_layer(x, pre, 3, blocks[i].cin, blocks[i].cout, blocks[i].down ? 2 : 1, !blocks[i].down, 1);
		snprintf(pre, sizeof(pre), "%s/conv2", blocks[i].name);
		b = conv_layer(a, pre, 3, blocks[i].cout, blocks[i].cout, 1, 1, 0);
		if (blocks[i].down) {
			int bside = (side - 3) / 2 + 1;
			const char *skip = pool("AveragePool", x, 2, 2);

			side /= 2;
			if (side > bside)   /* face-nets.md §4: b gets a zero row and column */
				b = pad_after(b, 0, side - bside, side - bside);
			if (blocks[i].cout > blocks[i].cin)   /* and the skip zero channels */
				skip = pad_after(skip, blocks[i].cout - blocks[i].cin, 0, 0);
			x = unary("Relu", binary("Add", skip, b));
		} else {
			x = unary("Relu", binary("Add", b, x));
		}
	}
	{
		int fs[2] = {256, 128};
		int64_t fd[2] = {256, 128};

		x = unary("Flatten", unary("GlobalAveragePool", x));
		return binary("MatMul", x, init_floats("fc", get("fc", 2, fs), 2, fd));
	}
}

static Onnx__ValueInfoProto *value_info(const char *name, int ndim, const int64_t *dims, const char *batch)
{
	Onnx__ValueInfoProto *v = xcalloc(1, sizeof(*v));
	Onnx__TypeProto *t = xcalloc(1, sizeof(*t));
	Onnx__TypeProto__Tensor *tt = xcalloc(1, sizeof(*tt));
	Onnx__TensorShapeProto *sh = xcalloc(1, sizeof(*sh));

	onnx__value_info_proto__init(v);
	onnx__type_proto__init(t);
	onnx__type_proto__tensor__init(tt);
	onnx__tensor_shape_proto__init(sh);
	sh->n_dim = (size_t)ndim;
	sh->dim = xcalloc((size_t)ndim, sizeof(*sh->dim));
	for (int i = 0; i < ndim; i++) {
		Onnx__TensorShapeProto__Dimension *d = xcalloc(1, sizeof(*d));

		onnx__tensor_shape_proto__dimension__init(d);
		if (i == 0) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = (char *)batch;
		} else {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = dims[i];
		}
		sh->dim[i] = d;
	}
	tt->has_elem_type = 1;
	tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tt->shape = sh;
	t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	t->tensor_type = tt;
	v->name = (char *)name;
	v->type = t;
	return v;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, len, f) == len;

	if (f && fclose(f))
		ok = 0;
	if (!ok)
		fprintf(stderr, "onnx-export-faceapi: cannot write %s\n", path);
	return ok ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	static const int64_t in_dims[4] = {1, 3, 150, 150}, out_dims[2] = {1, 128};
	Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
	Onnx__OperatorSetIdProto *opsets[1] = {&opset};
	Onnx__ValueInfoProto *gin[1], *gout[1];
	struct gpu_weights *w = NULL;
	char err[512], path[PATH_MAX], detector[PATH_MAX], json[PATH_MAX + 512];
	unsigned char digest[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	uint8_t *buf;
	size_t len;
	char *out;

	if (argc != 3) {
		fprintf(stderr, "usage: onnx-export-faceapi FACE_API_MODEL_DIR OUT_DIR\n");
		return 2;
	}
	if (sodium_init() < 0 || gpu_weights_load(&w, argv[1], "face_recognition_model", err, sizeof(err))) {
		fprintf(stderr, "onnx-export-faceapi: %s\n", err);
		return 1;
	}
	W = w;
	out = build_net("input");
	opset.has_version = 1;
	opset.version = 13;
	gin[0] = value_info("input", 4, in_dims, "N");
	gout[0] = value_info(out, 2, out_dims, "N");
	g.name = "face_recognition_model";
	g.n_node = nnodes;
	g.node = nodes;
	g.n_initializer = ninits;
	g.initializer = inits;
	g.n_input = 1;
	g.input = gin;
	g.n_output = 1;
	g.output = gout;
	m.has_ir_version = 1;
	m.ir_version = 7;
	m.producer_name = "vigil onnx-export-faceapi";
	m.n_opset_import = 1;
	m.opset_import = opsets;
	m.graph = &g;
	len = onnx__model_proto__get_packed_size(&m);
	buf = xcalloc(len, 1);
	onnx__model_proto__pack(&m, buf);
	snprintf(path, sizeof(path), "%s/face_recognition.onnx", argv[2]);
	if (write_file(path, buf, len))
		return 1;
	crypto_hash_sha256(digest, buf, len);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	if (!realpath(argv[1], detector)) {
		fprintf(stderr, "onnx-export-faceapi: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	snprintf(json, sizeof(json),
		 "{\"id\": \"faceapi-onnx\", \"onnx\": \"face_recognition.onnx\", \"sha256\": \"%s\",\n"
		 " \"input\": {\"width\": 150, \"height\": 150, \"mean\": [122.782, 117.001, 104.298],\n"
		 "           \"std\": [255, 255, 255], \"channel_order\": \"rgb\"},\n"
		 " \"descriptor_dim\": 128, \"metric\": \"l2\", \"threshold\": 0.6,\n"
		 " \"detector\": \"%s\"}\n",
		 hex, detector);
	snprintf(path, sizeof(path), "%s/vigil-model.json", argv[2]);
	if (write_file(path, json, strlen(json)))
		return 1;
	gpu_weights_close(&w);
	return 0;
}
