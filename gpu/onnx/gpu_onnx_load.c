/*
 * The ONNX importer (gpu_onnx.h): protobuf-c (over gpu/onnx/onnx.proto, generated at build time)
 * parses the file; this walks the graph once in its topological order, folds every constant
 * computation (Constant, Shape, Gather, Unsqueeze, Concat of constants, initializers), turns the
 * rest into the ops gpu_onnx_run.c runs, folds what follows a convolution into it (Mul/Add/Sub
 * by a per-channel constant, BatchNormalization, Relu), then plans the scratch slots.
 *
 * The file is outside input (DESIGN.md invariant 6): sizes are bounded (gpu_onnx.h), every name
 * must resolve to an earlier value, every shape is checked against what the op accepts, and
 * anything else is refused with one line: "NAME: node 'N' (op OP): reason". Called at model open,
 * from one thread; not on the fast path.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/onnx.pb-c.h"
#include "gpu_onnx.h"
#include "vg_base.h"

#define MAX_DIMS 6
#define MAX_ELEMS (1u << 28)          /* one tensor: 1 GiB of floats */
#define MAX_ACT_FLOATS (64u << 20)    /* one activation of one image */
#define MAX_KERNEL 15
/* all scratch slots of one image: 2 GiB for a batch of 8 (MobileFaceNet at 112 px takes 29 MB) */
#define ONNX_MAX_SCRATCH_FLOATS (64u << 20)

/* A constant: an initializer, or what constant folding made. Floats or integers. */
struct onnx_const {
	int ndim;
	int64_t dims[MAX_DIMS];
	size_t n;
	float *f;      /* FLOAT tensors */
	int64_t *i;    /* INT32 / INT64 tensors, widened */
};

/* A name in the graph: an activation (index), a constant, or nothing yet. */
struct name_entry {
	const char *name;
	int act;                      /* >= 0: activation */
	struct onnx_const *k;         /* else constant */
};

struct load {
	struct gpu_onnx_net *n;
	const char *file;
	char *err;
	size_t errlen;
	int opset;
	struct name_entry *tab;
	size_t tabcap;
	struct onnx_const **consts;
	int nconst, capconst;
	int capact, capop;
	const Onnx__NodeProto *node;   /* the node being imported, for error lines */
};

/* ---- errors: one line naming the node; outside names made printable ------------------------ */

/* memcpy of BYTES, which may be 0 with SRC NULL (protobuf-c leaves an empty repeated field NULL,
 * and memcpy's arguments must not be NULL even for 0 bytes) */
static void copy_n(void *dst, const void *src, size_t bytes)
{
	if (bytes)
		memcpy(dst, src, bytes);
}

static void printable(char *dst, size_t cap, const char *src)
{
	size_t j = 0;

	for (; src && *src && j + 1 < cap && j < 64; src++)
		dst[j++] = (*src >= 0x20 && *src < 0x7f && *src != '\'') ? *src : '?';
	dst[j] = '\0';
}

static int node_err(struct load *L, int rc, const char *fmt, ...) VG_PRINTF(3, 4);
static int node_err(struct load *L, int rc, const char *fmt, ...)
{
	char why[192], name[72], op[72];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!L->node)
		return vg_errf(L->err, L->errlen, rc, "%s: %s", L->file, why);
	printable(name, sizeof(name), L->node->name && *L->node->name ? L->node->name :
				      (L->node->n_output ? L->node->output[0] : "?"));
	printable(op, sizeof(op), L->node->op_type);
	return vg_errf(L->err, L->errlen, rc, "%s: node '%s' (op %s): %s", L->file, name, op, why);
}

/* ---- the name table: open addressing, sized for every name the graph can define ----------- */

static size_t name_hash(const char *s)
{
	size_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static struct name_entry *name_slot(struct load *L, const char *name)
{
	size_t i = name_hash(name) & (L->tabcap - 1);

	while (L->tab[i].name && strcmp(L->tab[i].name, name) != 0)
		i = (i + 1) & (L->tabcap - 1);
	return &L->tab[i];
}

static int name_define(struct load *L, const char *name, int act, struct onnx_const *k)
{
	struct name_entry *e;

	if (!name || !*name)
		return node_err(L, -EINVAL, "an output without a name");
	e = name_slot(L, name);
	if (e->name)
		return node_err(L, -EINVAL, "value '%.64s' is defined twice", name);
	*e = (struct name_entry){.name = name, .act = act, .k = k};
	return 0;
}

/* ---- ownership: constants and the arrays ops point into ------------------------------------ */

static float *own_floats(struct load *L, size_t n)
{
	struct gpu_onnx_net *net = L->n;
	float *p;

	if (net->nowned == net->capowned) {
		int cap = net->capowned ? 2 * net->capowned : 64;
		float **o = realloc(net->owned, (size_t)cap * sizeof(*o));

		if (!o)
			return NULL;
		net->owned = o;
		net->capowned = cap;
	}
	p = calloc(n ? n : 1, sizeof(float));
	if (p)
		net->owned[net->nowned++] = p;
	return p;
}

static struct onnx_const *const_new(struct load *L, int ndim, const int64_t *dims, int is_float)
{
	struct onnx_const *k;
	size_t n = 1;

	if (ndim < 0 || ndim > MAX_DIMS) {
		node_err(L, -ENOTSUP, "a constant of rank %d (at most %d)", ndim, MAX_DIMS);
		return NULL;
	}
	for (int d = 0; d < ndim; d++) {
		if (dims[d] < 0 || dims[d] > (int64_t)MAX_ELEMS || (dims[d] && n > MAX_ELEMS / (size_t)dims[d])) {
			node_err(L, -EFBIG, "a constant dimension %lld out of bounds", (long long)dims[d]);
			return NULL;
		}
		n *= (size_t)dims[d];
	}
	if (L->nconst == L->capconst) {
		int cap = L->capconst ? 2 * L->capconst : 256;
		struct onnx_const **c = realloc(L->consts, (size_t)cap * sizeof(*c));

		if (!c)
			goto out_nomem;
		L->consts = c;
		L->capconst = cap;
	}
	if (!(k = calloc(1, sizeof(*k))))
		goto out_nomem;
	L->consts[L->nconst++] = k;
	k->ndim = ndim;
	copy_n(k->dims, dims, (size_t)ndim * sizeof(*dims)); /* a scalar has none, DIMS maybe NULL */
	k->n = n;
	if (is_float ? !(k->f = own_floats(L, n)) : !(k->i = calloc(n ? n : 1, sizeof(int64_t))))
		goto out_nomem;
	return k;
out_nomem:
	node_err(L, -ENOMEM, "out of memory for a constant");
	return NULL;
}

/* A TensorProto's data, checked against its dims; FLOAT, DOUBLE (narrowed), INT32/INT64. */
static struct onnx_const *const_from_tensor(struct load *L, const Onnx__TensorProto *t)
{
	int dt = t->has_data_type ? t->data_type : 0;
	int is_float = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
	struct onnx_const *k;
	size_t elt;

	if (t->n_external_data || (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)) {
		node_err(L, -ENOTSUP, "tensor '%.64s' keeps its data in an external file", t->name ? t->name : "");
		return NULL;
	}
	if (!is_float && dt != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && dt != ONNX__TENSOR_PROTO__DATA_TYPE__INT32) {
		node_err(L, -ENOTSUP, "tensor '%.64s' has data type %d (float, double, int32, int64 only)",
			 t->name ? t->name : "", dt);
		return NULL;
	}
	if (t->n_dims > MAX_DIMS) {
		node_err(L, -ENOTSUP, "tensor '%.64s' of rank %zu", t->name ? t->name : "", t->n_dims);
		return NULL;
	}
	if (!(k = const_new(L, (int)t->n_dims, t->dims, is_float)))
		return NULL;
	elt = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4 : 8;
	if (t->has_raw_data) {
		const uint8_t *p = t->raw_data.data;

		if (t->raw_data.len != k->n * elt)
			goto out_size;
		for (size_t i = 0; i < k->n; i++, p += elt) {
			/* little-endian in the file: this reads it on a little-endian host (x86, arm64) */
			if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
				memcpy(&k->f[i], p, 4);
			else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
				double v;
				memcpy(&v, p, 8);
				k->f[i] = (float)v;
			} else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) {
				int32_t v;
				memcpy(&v, p, 4);
				k->i[i] = v;
			} else
				memcpy(&k->i[i], p, 8);
		}
		return k;
	}
	if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->n_float_data == k->n)
		copy_n(k->f, t->float_data, k->n * sizeof(float));
	else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE && t->n_double_data == k->n)
		for (size_t i = 0; i < k->n; i++)
			k->f[i] = (float)t->double_data[i];
	else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && t->n_int64_data == k->n)
		copy_n(k->i, t->int64_data, k->n * sizeof(int64_t));
	else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 && t->n_int32_data == k->n)
		for (size_t i = 0; i < k->n; i++)
			k->i[i] = t->int32_data[i];
	else
		goto out_size;
	return k;
out_size:
	node_err(L, -EINVAL, "tensor '%.64s': its data does not match its %zu elements", t->name ? t->name : "", k->n);
	return NULL;
}

/* ---- activations and ops ------------------------------------------------------------------- */

static int act_new(struct load *L, int rank, int c, int h, int w)
{
	struct gpu_onnx_net *n = L->n;

	if (c < 1 || h < 1 || w < 1 || (size_t)c * h * w > MAX_ACT_FLOATS)
		return node_err(L, -EINVAL, "an output of %d x %d x %d (empty, or over %u floats)", c, h, w, MAX_ACT_FLOATS);
	if (n->nact == L->capact) {
		int cap = L->capact ? 2 * L->capact : 64;
		struct onnx_act *a = realloc(n->act, (size_t)cap * sizeof(*a));

		if (!a)
			return node_err(L, -ENOMEM, "out of memory");
		n->act = a;
		L->capact = cap;
	}
	n->act[n->nact] = (struct onnx_act){.rank = rank, .c = c, .h = h, .w = w, .slot = -1};
	return n->nact++;
}

/* A new op writing a new activation of the given shape, named by the node's first output. */
static struct onnx_op *op_new(struct load *L, enum onnx_op_kind kind, int in0, int rank, int c, int h, int w)
{
	struct gpu_onnx_net *n = L->n;
	struct onnx_op *o;
	int a;

	if (n->nop == L->capop) {
		int cap = L->capop ? 2 * L->capop : 64;
		struct onnx_op *p = realloc(n->op, (size_t)cap * sizeof(*p));

		if (!p) {
			node_err(L, -ENOMEM, "out of memory");
			return NULL;
		}
		n->op = p;
		L->capop = cap;
	}
	if ((a = act_new(L, rank, c, h, w)) < 0 || name_define(L, L->node->output[0], a, NULL))
		return NULL;
	o = &n->op[n->nop++];
	*o = (struct onnx_op){.kind = kind, .in = {in0, -1}, .out = a};
	return o;
}

/* ---- node inputs and attributes ------------------------------------------------------------ */

static struct name_entry *input(struct load *L, size_t i)
{
	struct name_entry *e;

	if (i >= L->node->n_input || !L->node->input[i][0]) {
		node_err(L, -EINVAL, "input %zu is missing", i);
		return NULL;
	}
	e = name_slot(L, L->node->input[i]);
	if (!e->name) {
		node_err(L, -EINVAL, "input '%.64s' is not made by an earlier node", L->node->input[i]);
		return NULL;
	}
	return e;
}

static int input_act(struct load *L, size_t i)
{
	struct name_entry *e = input(L, i);

	if (!e)
		return -EINVAL;
	if (e->act < 0)
		return node_err(L, -ENOTSUP, "input '%.64s' is a constant where an activation was expected",
				L->node->input[i]);
	return e->act;
}

static struct onnx_const *input_const(struct load *L, size_t i, int want_float)
{
	struct name_entry *e = input(L, i);

	if (!e)
		return NULL;
	if (e->act >= 0 || (want_float ? !e->k->f : !e->k->i)) {
		node_err(L, -ENOTSUP, "input '%.64s' must be a %s constant", L->node->input[i],
			 want_float ? "float" : "integer");
		return NULL;
	}
	return e->k;
}

static int has_input(struct load *L, size_t i)
{
	return i < L->node->n_input && L->node->input[i][0];
}

static const Onnx__AttributeProto *attr(struct load *L, const char *name)
{
	for (size_t i = 0; i < L->node->n_attribute; i++)
		if (L->node->attribute[i]->name && strcmp(L->node->attribute[i]->name, name) == 0)
			return L->node->attribute[i];
	return NULL;
}

static int64_t attr_int(struct load *L, const char *name, int64_t def)
{
	const Onnx__AttributeProto *a = attr(L, name);

	return a && a->has_i ? a->i : def;
}

static float attr_float(struct load *L, const char *name, float def)
{
	const Onnx__AttributeProto *a = attr(L, name);

	return a && a->has_f ? a->f : def;
}

/* The ints of attribute NAME into OUT (at most MAX); their count, DEF_N copies of DEF if absent. */
static int attr_ints(struct load *L, const char *name, int64_t *out, int max, int def_n, int64_t def)
{
	const Onnx__AttributeProto *a = attr(L, name);

	if (!a) {
		for (int i = 0; i < def_n && i < max; i++)
			out[i] = def;
		return def_n;
	}
	if (a->n_ints > (size_t)max)
		return node_err(L, -ENOTSUP, "attribute %s has %zu values", name, a->n_ints);
	copy_n(out, a->ints, a->n_ints * sizeof(int64_t));
	return (int)a->n_ints;
}

static int attr_string_is(struct load *L, const char *name, const char *want, const char *def)
{
	const Onnx__AttributeProto *a = attr(L, name);

	if (!a || !a->has_s)
		return strcmp(def, want) == 0;
	return a->s.len == strlen(want) && memcmp(a->s.data, want, a->s.len) == 0;
}

static const float *expand(struct load *L, const float *k, int kn, int c, int negate);

/* ---- operators ----------------------------------------------------------------------------- */

/* Conv: any group count (dense, grouped, depthwise), square kernel, equal strides, dilation 1,
 * explicit or auto pads. */
static int op_conv(struct load *L)
{
	int x = input_act(L, 0);
	struct onnx_const *W, *B = NULL;
	int64_t ks[2], st[2] = {1, 1}, dl[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
	int64_t group = attr_int(L, "group", 1);
	const struct onnx_act *A;
	struct gpu_conv c = {0};
	struct onnx_op *o;
	int k, oh, ow, pad[4];

	if (x < 0 || !(W = input_const(L, 1, 1)) || (has_input(L, 2) && !(B = input_const(L, 2, 1))))
		return -EINVAL;
	A = &L->n->act[x];
	if (A->rank != 4 || W->ndim != 4)
		return node_err(L, -ENOTSUP, "only 2-D convolutions of NCHW activations");
	if (W->dims[2] != W->dims[3] || W->dims[2] < 1 || W->dims[2] > MAX_KERNEL)
		return node_err(L, -ENOTSUP, "kernel %lldx%lld (square, at most %d)", (long long)W->dims[2],
				(long long)W->dims[3], MAX_KERNEL);
	k = (int)W->dims[2];
	if (attr_ints(L, "kernel_shape", ks, 2, 2, k) != 2 || ks[0] != k || ks[1] != k)
		return node_err(L, -EINVAL, "kernel_shape disagrees with the weights");
	if (attr_ints(L, "strides", st, 2, 2, 1) != 2 || st[0] != st[1] || st[0] < 1 || st[0] > 8)
		return node_err(L, -ENOTSUP, "strides must be equal, 1..8");
	if (attr_ints(L, "dilations", dl, 2, 2, 1) != 2 || dl[0] != 1 || dl[1] != 1)
		return node_err(L, -ENOTSUP, "dilations other than 1");
	if (attr_ints(L, "pads", pads, 4, 4, 0) != 4)
		return node_err(L, -EINVAL, "pads must have 4 values");
	for (int i = 0; i < 4; i++)
		if (pads[i] < 0 || pads[i] >= k)
			return node_err(L, -ENOTSUP, "pad %lld with a %dx%d kernel", (long long)pads[i], k, k);
	c = (struct gpu_conv){.k = k, .cin = A->c, .cout = (int)W->dims[0], .stride = (int)st[0],
			      .pad = GPU_PAD_EXPLICIT, .pads = {(int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3]}};
	if (attr_string_is(L, "auto_pad", "SAME_UPPER", "NOTSET"))
		c.pad = GPU_PAD_SAME;   /* TF's SAME: the extra pad at the end */
	else if (attr_string_is(L, "auto_pad", "VALID", "NOTSET"))
		c.pad = GPU_PAD_VALID;
	else if (!attr_string_is(L, "auto_pad", "NOTSET", "NOTSET"))
		return node_err(L, -ENOTSUP, "auto_pad other than NOTSET, SAME_UPPER, VALID");
	if (group == 1 && W->dims[1] == A->c)
		c.depthwise = 0;
	else if (group == A->c && W->dims[0] == A->c && W->dims[1] == 1)
		c.depthwise = 1;
	else if (group > 1 && group < A->c && A->c % group == 0 && W->dims[0] % group == 0 && W->dims[1] == A->c / group)
		c.groups = (int)group;
	else
		return node_err(L, -EINVAL, "group %lld on %d channels with weights %lldx%lld", (long long)group, A->c,
				(long long)W->dims[0], (long long)W->dims[1]);
	if (B && (B->n != (size_t)c.cout))
		return node_err(L, -EINVAL, "bias of %zu values for %d outputs", B->n, c.cout);
	gpu_conv_out_dims(&c, A->h, A->w, &oh, &ow, pad);
	if (!(o = op_new(L, ONNX_OP_CONV, x, 4, c.cout, oh, ow)))
		return -EINVAL;
	/* ONNX's OIHW weights into the layers' HWIO ([k][k][cin][cout]; depthwise [k][k][c]) */
	{
		size_t cin = (size_t)W->dims[1], cout = (size_t)c.cout;   /* cin: per group */
		float *hwio = own_floats(L, W->n);

		if (!hwio)
			return node_err(L, -ENOMEM, "out of memory");
		for (size_t co = 0; co < cout; co++)
			for (size_t ci = 0; ci < cin; ci++)
				for (int ky = 0; ky < k; ky++)
					for (int kx = 0; kx < k; kx++)
						hwio[(((size_t)ky * k + kx) * cin + ci) * cout + co] =
							W->f[((co * cin + ci) * k + ky) * k + kx];
		c.filt = hwio;
	}
	c.bias = B ? B->f : NULL;
	o->conv = c;
	return 0;
}

/* How many values constant K gives when it broadcasts against activation A as one per channel
 * ([C], [C,1,1], [1,C,1,1]: C) or as a scalar (1); 0 when it broadcasts any other way. */
static int per_channel(const struct onnx_const *k, const struct onnx_act *a)
{
	int64_t d[MAX_DIMS];
	int nd = 0;

	if (k->n == 1)
		return 1;
	for (int i = 0; i < k->ndim; i++)
		if (nd || k->dims[i] != 1)
			d[nd++] = k->dims[i];
	/* [C] broadcasts along the last axis: the channels only when the activation is rank 2 or
	 * has 1x1 pixels; [C,1,1] along the channels of a rank-4 one */
	if (nd == 1 && d[0] == a->c && (a->rank == 2 || (a->h == 1 && a->w == 1)))
		return (int)k->n;
	if (nd == 3 && d[0] == a->c && d[1] == 1 && d[2] == 1 && a->rank == 4)
		return (int)k->n;
	return 0;
}

static int op_binary(struct load *L, enum onnx_binop bin)
{
	struct name_entry *ea = input(L, 0), *eb = ea ? input(L, 1) : NULL;
	struct onnx_op *o;

	if (!ea || !eb)
		return -EINVAL;
	if (ea->act >= 0 && eb->act >= 0) {
		const struct onnx_act *A = &L->n->act[ea->act], *B = &L->n->act[eb->act];
		size_t na = (size_t)A->c * A->h * A->w, nb = (size_t)B->c * B->h * B->w;
		const struct onnx_act *big = na >= nb ? A : B;

		if (!(A->rank == B->rank && A->c == B->c && A->h == B->h && A->w == B->w) && na != 1 && nb != 1)
			return node_err(L, -ENOTSUP, "operands of shapes %dx%dx%d and %dx%dx%d (equal shapes, or one value per image)",
					A->c, A->h, A->w, B->c, B->h, B->w);
		if (!(o = op_new(L, ONNX_OP_BINARY, ea->act, big->rank, big->c, big->h, big->w)))
			return -EINVAL;
		o->in[1] = eb->act;
		o->bin = bin;
		return 0;
	}
	if (ea->act < 0 && eb->act < 0)
		return node_err(L, -ENOTSUP, "both operands are constants (not folded)");
	{
		int x = ea->act >= 0 ? ea->act : eb->act;
		const struct onnx_const *k = ea->act >= 0 ? eb->k : ea->k;
		const struct onnx_act *A = &L->n->act[x];
		int kn;

		if (!k->f)
			return node_err(L, -ENOTSUP, "an integer constant operand");
		if (!(kn = per_channel(k, A)))
			return node_err(L, -ENOTSUP, "a constant operand that is neither a scalar nor one value per channel");
		if (!(o = op_new(L, ONNX_OP_BINARY, x, A->rank, A->c, A->h, A->w)))
			return -EINVAL;
		o->bin = bin;
		o->k = k->f;
		o->kn = kn;
		o->k_first = ea->act < 0;
	}
	return 0;
}

static int op_add(struct load *L) { return op_binary(L, ONNX_BIN_ADD); }
static int op_sub(struct load *L) { return op_binary(L, ONNX_BIN_SUB); }
static int op_mul(struct load *L) { return op_binary(L, ONNX_BIN_MUL); }
static int op_div(struct load *L) { return op_binary(L, ONNX_BIN_DIV); }

static int op_relu(struct load *L)
{
	int x = input_act(L, 0);
	const struct onnx_act *A;

	if (x < 0)
		return -EINVAL;
	A = &L->n->act[x];
	return op_new(L, ONNX_OP_RELU, x, A->rank, A->c, A->h, A->w) ? 0 : -EINVAL;
}

static int op_prelu(struct load *L)
{
	int x = input_act(L, 0);
	const struct onnx_const *k;
	const struct onnx_act *A;
	struct onnx_op *o;
	int kn;

	if (x < 0 || !(k = input_const(L, 1, 1)))
		return -EINVAL;
	A = &L->n->act[x];
	if (!(kn = per_channel(k, A)))
		return node_err(L, -ENOTSUP, "a slope that is neither a scalar nor one value per channel");
	if (!(o = op_new(L, ONNX_OP_PRELU, x, A->rank, A->c, A->h, A->w)))
		return -EINVAL;
	if (!(o->k = expand(L, k->f, kn, A->c, 0)))   /* one slope per channel: a loop the compiler vectorises */
		return node_err(L, -ENOMEM, "out of memory");
	o->kn = A->c;
	return 0;
}

static int op_batchnorm(struct load *L)
{
	int x = input_act(L, 0);
	const struct onnx_const *s, *b, *m, *v;
	float eps = attr_float(L, "epsilon", 1e-5f);
	const struct onnx_act *A;
	struct onnx_op *o;
	float *pre, *mul;

	if (x < 0 || !(s = input_const(L, 1, 1)) || !(b = input_const(L, 2, 1)) || !(m = input_const(L, 3, 1)) ||
	    !(v = input_const(L, 4, 1)))
		return -EINVAL;
	A = &L->n->act[x];
	if (s->n != (size_t)A->c || b->n != s->n || m->n != s->n || v->n != s->n)
		return node_err(L, -EINVAL, "scale, bias, mean and variance must have %d values", A->c);
	if (!(o = op_new(L, ONNX_OP_AFFINE, x, A->rank, A->c, A->h, A->w)) || !(pre = own_floats(L, s->n)) ||
	    !(mul = own_floats(L, s->n)))
		return node_err(L, -ENOMEM, "out of memory");
	for (size_t c = 0; c < s->n; c++) {
		pre[c] = -m->f[c];
		mul[c] = s->f[c] / sqrtf(v->f[c] + eps);
	}
	o->pre = pre;
	o->mul = mul;
	o->post = b->f;
	return 0;
}

/* MaxPool / AveragePool: square window, equal strides, pads that are TF's VALID or SAME. */
static int op_pool(struct load *L, enum onnx_op_kind kind)
{
	int x = input_act(L, 0);
	int64_t ks[2], st[2] = {1, 1}, pads[4] = {0, 0, 0, 0}, dl[2] = {1, 1};
	const struct onnx_act *A;
	struct onnx_op *o;
	int oh, ow, pt, pl;
	enum gpu_pad pad;

	if (x < 0)
		return -EINVAL;
	A = &L->n->act[x];
	if (A->rank != 4)
		return node_err(L, -ENOTSUP, "pooling of a rank-%d activation", A->rank);
	if (attr_ints(L, "kernel_shape", ks, 2, 0, 0) != 2 || ks[0] != ks[1] || ks[0] < 1 || ks[0] > MAX_KERNEL)
		return node_err(L, -ENOTSUP, "kernel_shape must be square, 1..%d", MAX_KERNEL);
	if (attr_ints(L, "strides", st, 2, 2, 1) != 2 || st[0] != st[1] || st[0] < 1 || st[0] > 8)
		return node_err(L, -ENOTSUP, "strides must be equal, 1..8");
	if (attr_ints(L, "dilations", dl, 2, 2, 1) != 2 || dl[0] != 1 || dl[1] != 1)
		return node_err(L, -ENOTSUP, "dilations other than 1");
	if (attr_int(L, "ceil_mode", 0) != 0)
		return node_err(L, -ENOTSUP, "ceil_mode 1");
	if (attr_ints(L, "pads", pads, 4, 4, 0) != 4)
		return node_err(L, -EINVAL, "pads must have 4 values");
	if (kind == ONNX_OP_AVGPOOL && attr_int(L, "count_include_pad", 0) != 0 && (pads[0] || pads[1] || pads[2] || pads[3]))
		return node_err(L, -ENOTSUP, "count_include_pad 1 with pads");
	/* the reference pools pad as TF does: all-zero pads are VALID; SAME's split must match */
	pad = GPU_PAD_VALID;
	if (attr_string_is(L, "auto_pad", "SAME_UPPER", "NOTSET") || pads[0] || pads[1] || pads[2] || pads[3]) {
		int ph, pw;

		pad = GPU_PAD_SAME;
		gpu_out_dim(A->h, (int)ks[0], (int)st[0], pad, &oh, &pt);
		gpu_out_dim(A->w, (int)ks[0], (int)st[0], pad, &ow, &pl);
		ph = (oh - 1) * (int)st[0] + (int)ks[0] - A->h;
		pw = (ow - 1) * (int)st[0] + (int)ks[0] - A->w;
		if (!attr_string_is(L, "auto_pad", "SAME_UPPER", "NOTSET") &&
		    (pads[0] != pt || pads[1] != pl || pads[2] != ph - pt || pads[3] != pw - pl))
			return node_err(L, -ENOTSUP, "pads other than none or TF's SAME split");
	} else if (!attr_string_is(L, "auto_pad", "NOTSET", "NOTSET") && !attr_string_is(L, "auto_pad", "VALID", "NOTSET")) {
		return node_err(L, -ENOTSUP, "auto_pad other than NOTSET, SAME_UPPER, VALID");
	}
	gpu_out_dim(A->h, (int)ks[0], (int)st[0], pad, &oh, &pt);
	gpu_out_dim(A->w, (int)ks[0], (int)st[0], pad, &ow, &pl);
	if (!(o = op_new(L, kind, x, 4, A->c, oh, ow)))
		return -EINVAL;
	o->pool_k = (int)ks[0];
	o->pool_s = (int)st[0];
	o->pool_pad = pad;
	return 0;
}

static int op_maxpool(struct load *L) { return op_pool(L, ONNX_OP_MAXPOOL); }
static int op_avgpool(struct load *L) { return op_pool(L, ONNX_OP_AVGPOOL); }

static int op_globalavg(struct load *L)
{
	int x = input_act(L, 0);

	if (x < 0)
		return -EINVAL;
	if (L->n->act[x].rank != 4)
		return node_err(L, -ENOTSUP, "GlobalAveragePool of a rank-2 activation");
	return op_new(L, ONNX_OP_GLOBALAVG, x, 4, L->n->act[x].c, 1, 1) ? 0 : -EINVAL;
}

/* Gemm (alpha = beta = 1, A not transposed) and MatMul, with constant weights. */
static int op_gemm_common(struct load *L, int trans_b, const struct onnx_const *C)
{
	int x = input_act(L, 0);
	const struct onnx_const *B;
	const struct onnx_act *A;
	struct onnx_op *o;
	int64_t kk, mm;
	float *w;

	if (x < 0 || !(B = input_const(L, 1, 1)))
		return -EINVAL;
	A = &L->n->act[x];
	if (A->rank != 2 || B->ndim != 2)
		return node_err(L, -ENOTSUP, "a product of a rank-%d activation and rank-%d weights (2 and 2 only)", A->rank, B->ndim);
	kk = trans_b ? B->dims[1] : B->dims[0];
	mm = trans_b ? B->dims[0] : B->dims[1];
	if (kk != A->c || mm < 1)
		return node_err(L, -EINVAL, "weights %lldx%lld for %d inputs", (long long)B->dims[0], (long long)B->dims[1], A->c);
	if (C && C->n != (size_t)mm)
		return node_err(L, -ENOTSUP, "a bias of %zu values for %lld outputs", C->n, (long long)mm);
	if (!(o = op_new(L, ONNX_OP_GEMM, x, 2, (int)mm, 1, 1)) || !(w = own_floats(L, B->n)))
		return node_err(L, -ENOMEM, "out of memory");
	for (int64_t k = 0; k < kk; k++)
		for (int64_t m = 0; m < mm; m++)
			w[k * mm + m] = trans_b ? B->f[m * kk + k] : B->f[k * mm + m];
	o->w = w;
	o->bias = C ? C->f : NULL;
	o->gemm_k = (int)kk;
	o->gemm_m = (int)mm;
	return 0;
}

static int op_gemm(struct load *L)
{
	const struct onnx_const *C = NULL;

	if (attr_float(L, "alpha", 1.0f) != 1.0f || attr_float(L, "beta", 1.0f) != 1.0f || attr_int(L, "transA", 0) != 0)
		return node_err(L, -ENOTSUP, "alpha or beta other than 1, or transA");
	if (has_input(L, 2) && !(C = input_const(L, 2, 1)))
		return -EINVAL;
	return op_gemm_common(L, attr_int(L, "transB", 0) != 0, C);
}

static int op_matmul(struct load *L)
{
	return op_gemm_common(L, 0, NULL);
}

/* Flatten (axis 1) and Reshape to [batch, features] or [batch, C, 1, 1]. */
static int flatten_to(struct load *L, int x, int rank, int c)
{
	const struct onnx_act *A = &L->n->act[x];

	if ((int64_t)c != (int64_t)A->c * A->h * A->w)
		return node_err(L, -EINVAL, "reshape to %d values per image from %dx%dx%d", c, A->c, A->h, A->w);
	return op_new(L, ONNX_OP_FLATTEN, x, rank, c, 1, 1) ? 0 : -EINVAL;
}

static int op_flatten(struct load *L)
{
	int x = input_act(L, 0);

	if (x < 0)
		return -EINVAL;
	if (attr_int(L, "axis", 1) != 1)
		return node_err(L, -ENOTSUP, "axis other than 1");
	return flatten_to(L, x, 2, L->n->act[x].c * L->n->act[x].h * L->n->act[x].w);
}

static int op_reshape(struct load *L)
{
	int x = input_act(L, 0);
	const struct onnx_const *s;
	const struct onnx_act *A;
	int64_t per;

	if (x < 0 || !(s = input_const(L, 1, 0)))
		return -EINVAL;
	A = &L->n->act[x];
	per = (int64_t)A->c * A->h * A->w;
	/* the first entry is the batch (whatever Shape made of it: 1, 0, -1): only the rest counts */
	if (s->ndim == 1 && s->n == 2 && (s->i[1] == per || s->i[1] == -1) && s->i[0] >= -1 && s->i[0] <= 1)
		return flatten_to(L, x, 2, (int)per);
	if (s->ndim == 1 && s->n == 4 && s->i[0] >= -1 && s->i[0] <= 1 && (s->i[1] == per || s->i[1] == -1) &&
	    s->i[2] == 1 && s->i[3] == 1)
		return flatten_to(L, x, 4, (int)per);
	return node_err(L, -ENOTSUP, "reshape to a shape other than [batch, %lld] or [batch, %lld, 1, 1]",
			(long long)per, (long long)per);
}

static int alias_input(struct load *L)
{
	int x = input_act(L, 0);

	return x < 0 ? -EINVAL : name_define(L, L->node->output[0], x, NULL);
}

/* Identity and Dropout (inference: identity) of an activation or a constant. */
static int op_identity(struct load *L)
{
	struct name_entry *e = input(L, 0);

	if (!e)
		return -EINVAL;
	return e->act >= 0 ? alias_input(L) : name_define(L, L->node->output[0], -1, e->k);
}

static int op_transpose(struct load *L)
{
	struct name_entry *e = input(L, 0);
	int64_t perm[MAX_DIMS];
	int np;

	if (!e)
		return -EINVAL;
	np = attr_ints(L, "perm", perm, MAX_DIMS, 0, 0);
	if (np < 0)
		return np;
	for (int i = 0; i < np; i++)
		if (perm[i] != i)
			goto not_identity;
	return op_identity(L);
not_identity:
	if (e->act < 0 && e->k->f && e->k->ndim == 2 && np == 2) {
		const struct onnx_const *k = e->k;
		int64_t dims[2] = {k->dims[1], k->dims[0]};
		struct onnx_const *t = const_new(L, 2, dims, 1);

		if (!t)
			return -ENOMEM;
		for (int64_t r = 0; r < k->dims[0]; r++)
			for (int64_t c = 0; c < k->dims[1]; c++)
				t->f[c * k->dims[0] + r] = k->f[r * k->dims[1] + c];
		return name_define(L, L->node->output[0], -1, t);
	}
	return node_err(L, -ENOTSUP, "a transpose that does not fold (only identity, or of a 2-D constant)");
}

static int op_concat(struct load *L)
{
	struct name_entry *e0 = input(L, 0);
	int64_t axis = attr_int(L, "axis", 0);

	if (!e0)
		return -EINVAL;
	if (e0->act < 0) {   /* constant shape arithmetic: 1-D integers end to end */
		size_t total = 0;
		struct onnx_const *k;
		int64_t dims[1];

		for (size_t i = 0; i < L->node->n_input; i++) {
			const struct onnx_const *p = input_const(L, i, 0);

			if (!p)
				return -EINVAL;
			if (p->ndim != 1 || total + p->n > MAX_ELEMS)
				return node_err(L, -ENOTSUP, "concatenation of constants that are not 1-D");
			total += p->n;
		}
		dims[0] = (int64_t)total;
		if (!(k = const_new(L, 1, dims, 0)))
			return -ENOMEM;
		total = 0;
		for (size_t i = 0; i < L->node->n_input; i++) {
			const struct onnx_const *p = name_slot(L, L->node->input[i])->k;

			copy_n(k->i + total, p->i, p->n * sizeof(int64_t));
			total += p->n;
		}
		return name_define(L, L->node->output[0], -1, k);
	}
	{
		const struct onnx_act *A, *B;
		struct onnx_op *o;
		int a, b;

		if (L->node->n_input != 2)
			return node_err(L, -ENOTSUP, "concatenation of %zu activations (2 only)", L->node->n_input);
		if ((a = input_act(L, 0)) < 0 || (b = input_act(L, 1)) < 0)
			return -EINVAL;
		A = &L->n->act[a];
		B = &L->n->act[b];
		if (axis != 1 && axis != -A->rank + 1)
			return node_err(L, -ENOTSUP, "concatenation along axis %lld (channels only)", (long long)axis);
		if (A->rank != B->rank || A->h != B->h || A->w != B->w)
			return node_err(L, -EINVAL, "concatenated activations differ in shape");
		if (!(o = op_new(L, ONNX_OP_CONCAT, a, A->rank, A->c + B->c, A->h, A->w)))
			return -EINVAL;
		o->in[1] = b;
		return 0;
	}
}

/* Pad with zeros around channels, rows and columns (mode constant, value 0). */
static int op_pad(struct load *L)
{
	int x = input_act(L, 0);
	int64_t p[8];
	const struct onnx_act *A;
	struct onnx_op *o;
	int np;

	if (x < 0)
		return -EINVAL;
	A = &L->n->act[x];
	if (!attr_string_is(L, "mode", "constant", "constant"))
		return node_err(L, -ENOTSUP, "a mode other than constant");
	if (has_input(L, 1)) {
		const struct onnx_const *k = input_const(L, 1, 0);

		if (!k)
			return -EINVAL;
		if (k->n != 8)
			return node_err(L, -ENOTSUP, "pads of %zu values (8: NCHW begins, then ends)", k->n);
		memcpy(p, k->i, sizeof(p));
		if (has_input(L, 2)) {
			const struct onnx_const *v = input_const(L, 2, 1);

			if (!v || v->n != 1 || v->f[0] != 0.0f)
				return v ? node_err(L, -ENOTSUP, "a pad value other than 0") : -EINVAL;
		}
		if (has_input(L, 3))
			return node_err(L, -ENOTSUP, "pads on chosen axes");
	} else {
		if ((np = attr_ints(L, "pads", p, 8, 0, 0)) != 8)
			return node_err(L, -ENOTSUP, "pads of %d values (8: NCHW begins, then ends)", np);
		if (attr_float(L, "value", 0.0f) != 0.0f)
			return node_err(L, -ENOTSUP, "a pad value other than 0");
	}
	if (A->rank != 4 || p[0] || p[4])
		return node_err(L, -ENOTSUP, "padding of the batch axis or of a rank-2 activation");
	for (int i = 0; i < 8; i++)
		if (p[i] < 0 || p[i] > 4096)
			return node_err(L, -ENOTSUP, "pad %lld (0..4096)", (long long)p[i]);
	if (!(o = op_new(L, ONNX_OP_PAD, x, 4, A->c + (int)(p[1] + p[5]), A->h + (int)(p[2] + p[6]),
			 A->w + (int)(p[3] + p[7]))))
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		o->pad[i] = (int)p[1 + i];
		o->pad[3 + i] = (int)p[5 + i];
	}
	return 0;
}

/* Over all of an image's values: the only normalisation face-recognition nets end with. */
static int op_norm_common(struct load *L, enum onnx_op_kind kind, int64_t axis)
{
	int x = input_act(L, 0);
	const struct onnx_act *A;

	if (x < 0)
		return -EINVAL;
	A = &L->n->act[x];
	if ((axis != 1 && axis != -1) || (A->rank == 4 && (A->h != 1 || A->w != 1)))
		return node_err(L, -ENOTSUP, "normalisation other than over the features of a [batch, features] tensor");
	if (kind == ONNX_OP_REDUCEL2)
		return op_new(L, kind, x, A->rank, 1, 1, 1) ? 0 : -EINVAL;
	return op_new(L, kind, x, A->rank, A->c, 1, 1) ? 0 : -EINVAL;
}

static int op_lpnorm(struct load *L)
{
	if (attr_int(L, "p", 2) != 2)
		return node_err(L, -ENOTSUP, "p other than 2");
	return op_norm_common(L, ONNX_OP_LPNORM, attr_int(L, "axis", -1));
}

static int op_reducel2(struct load *L)
{
	int64_t axes[2];
	int na = attr_ints(L, "axes", axes, 2, 0, 0);

	if (na == 0 && has_input(L, 1)) {
		const struct onnx_const *k = input_const(L, 1, 0);

		if (!k || k->n > 2)
			return k ? node_err(L, -ENOTSUP, "axes of %zu values", k->n) : -EINVAL;
		na = (int)k->n;
		copy_n(axes, k->i, k->n * sizeof(int64_t));
	}
	if (na != 1 || attr_int(L, "keepdims", 1) != 1)
		return node_err(L, -ENOTSUP, "a reduction other than over axis 1 keeping dims");
	return op_norm_common(L, ONNX_OP_REDUCEL2, axes[0]);
}

/* ---- constant folding: the shape arithmetic exporters leave behind ------------------------- */

static int op_constant(struct load *L)
{
	const Onnx__AttributeProto *a = attr(L, "value");
	struct onnx_const *k;

	if (a && a->t) {
		if (!(k = const_from_tensor(L, a->t)))
			return -EINVAL;
	} else if ((a = attr(L, "value_ints"))) {
		int64_t d[1] = {(int64_t)a->n_ints};

		if (!(k = const_new(L, 1, d, 0)))
			return -EINVAL;
		copy_n(k->i, a->ints, a->n_ints * sizeof(int64_t));
	} else if ((a = attr(L, "value_float")) && a->has_f) {
		if (!(k = const_new(L, 0, NULL, 1)))
			return -EINVAL;
		k->f[0] = a->f;
	} else if ((a = attr(L, "value_int")) && a->has_i) {
		if (!(k = const_new(L, 0, NULL, 0)))
			return -EINVAL;
		k->i[0] = a->i;
	} else {
		return node_err(L, -ENOTSUP, "a Constant without value, value_ints, value_float or value_int");
	}
	return name_define(L, L->node->output[0], -1, k);
}

/* Shape of an activation: [1 (the batch), C, H, W] or [1, C]. */
static int op_shape(struct load *L)
{
	int x = input_act(L, 0);
	const struct onnx_act *A;
	struct onnx_const *k;
	int64_t d[1];

	if (x < 0)
		return -EINVAL;
	A = &L->n->act[x];
	d[0] = A->rank;
	if (!(k = const_new(L, 1, d, 0)))
		return -EINVAL;
	k->i[0] = 1;
	k->i[1] = A->c;
	if (A->rank == 4) {
		k->i[2] = A->h;
		k->i[3] = A->w;
	}
	return name_define(L, L->node->output[0], -1, k);
}

static int op_gather(struct load *L)
{
	const struct onnx_const *data, *idx;
	struct onnx_const *k;

	if (!(data = input_const(L, 0, 0)) || !(idx = input_const(L, 1, 0)))
		return -EINVAL;
	if (data->ndim != 1 || idx->ndim > 1 || attr_int(L, "axis", 0) != 0)
		return node_err(L, -ENOTSUP, "gathering other than from a 1-D integer constant");
	if (!(k = const_new(L, idx->ndim, idx->dims, 0)))
		return -EINVAL;
	for (size_t i = 0; i < idx->n; i++) {
		int64_t j = idx->i[i] < 0 ? idx->i[i] + (int64_t)data->n : idx->i[i];

		if (j < 0 || j >= (int64_t)data->n)
			return node_err(L, -EINVAL, "index %lld out of %zu", (long long)idx->i[i], data->n);
		k->i[i] = data->i[j];
	}
	return name_define(L, L->node->output[0], -1, k);
}

static int op_unsqueeze(struct load *L)
{
	const struct onnx_const *x;
	int64_t axes[MAX_DIMS], dims[MAX_DIMS];
	struct onnx_const *k;
	int na;

	if (!(x = input_const(L, 0, 0)))
		return node_err(L, -ENOTSUP, "Unsqueeze of an activation");
	na = attr_ints(L, "axes", axes, MAX_DIMS, 0, 0);
	if (na == 0 && has_input(L, 1)) {
		const struct onnx_const *a = input_const(L, 1, 0);

		if (!a || a->n > MAX_DIMS)
			return a ? node_err(L, -ENOTSUP, "too many axes") : -EINVAL;
		na = (int)a->n;
		copy_n(axes, a->i, a->n * sizeof(int64_t));
	}
	if (na <= 0 || x->ndim + na > MAX_DIMS)
		return node_err(L, -ENOTSUP, "unsqueezing to rank %d", x->ndim + (na > 0 ? na : 0));
	{
		int nd = x->ndim + na, src = 0;
		int is_axis[MAX_DIMS] = {0};

		for (int i = 0; i < na; i++) {
			int64_t a = axes[i] < 0 ? axes[i] + nd : axes[i];

			if (a < 0 || a >= nd || is_axis[a])
				return node_err(L, -EINVAL, "axis %lld out of range or repeated", (long long)axes[i]);
			is_axis[a] = 1;
		}
		for (int i = 0; i < nd; i++)
			dims[i] = is_axis[i] ? 1 : x->dims[src++];
		if (!(k = const_new(L, nd, dims, 0)))
			return -EINVAL;
		copy_n(k->i, x->i, x->n * sizeof(int64_t));
	}
	return name_define(L, L->node->output[0], -1, k);
}

static const struct {
	const char *op;
	int (*fn)(struct load *L);
} op_table[] = {
	{"Conv", op_conv},
	{"BatchNormalization", op_batchnorm},
	{"PRelu", op_prelu},
	{"Relu", op_relu},
	{"Add", op_add},
	{"Sub", op_sub},
	{"Mul", op_mul},
	{"Div", op_div},
	{"Gemm", op_gemm},
	{"MatMul", op_matmul},
	{"MaxPool", op_maxpool},
	{"AveragePool", op_avgpool},
	{"GlobalAveragePool", op_globalavg},
	{"Flatten", op_flatten},
	{"Reshape", op_reshape},
	{"Concat", op_concat},
	{"Identity", op_identity},
	{"Dropout", op_identity},
	{"Transpose", op_transpose},
	{"Pad", op_pad},
	{"LpNormalization", op_lpnorm},
	{"ReduceL2", op_reducel2},
	{"Constant", op_constant},
	{"Shape", op_shape},
	{"Gather", op_gather},
	{"Unsqueeze", op_unsqueeze},
};

static int import_node(struct load *L, const Onnx__NodeProto *nd)
{
	L->node = nd;
	if (!nd->op_type || nd->n_output < 1)
		return node_err(L, -EINVAL, "a node without an operator or an output");
	if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx") != 0)
		return node_err(L, -ENOTSUP, "operator domain not supported");
	for (size_t i = 0; i < VG_ARRAY_SIZE(op_table); i++)
		if (strcmp(nd->op_type, op_table[i].op) == 0)
			return op_table[i].fn(L);
	return node_err(L, -ENOTSUP, "operator not supported");
}

/* ---- the graph's input and output ---------------------------------------------------------- */

/* The one input that is not an initializer: [batch, 3, H, W] float, H and W the manifest's. */
static int import_input(struct load *L, const Onnx__GraphProto *g, const struct gpu_onnx_input *in)
{
	const Onnx__ValueInfoProto *v = NULL;

	for (size_t i = 0; i < g->n_input; i++) {
		if (!g->input[i]->name || name_slot(L, g->input[i]->name)->name)
			continue;   /* an initializer listed as an input too (IR < 4) */
		if (v)
			return node_err(L, -ENOTSUP, "more than one input");
		v = g->input[i];
	}
	if (!v)
		return node_err(L, -EINVAL, "no input");
	if (v->type && v->type->tensor_type) {
		const Onnx__TypeProto__Tensor *t = v->type->tensor_type;
		int64_t want[4] = {-1, 3, in->height, in->width};

		if (t->has_elem_type && t->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
			return node_err(L, -ENOTSUP, "an input of element type %d (float only)", t->elem_type);
		if (t->shape && t->shape->n_dim != 4)
			return node_err(L, -ENOTSUP, "an input of rank %zu ([batch, 3, H, W] only)", t->shape->n_dim);
		for (size_t d = 1; t->shape && d < 4; d++) {
			const Onnx__TensorShapeProto__Dimension *dim = t->shape->dim[d];

			if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value != want[d])
				return node_err(L, -EINVAL, "input dimension %zu is %lld, the manifest says %lld", d,
						(long long)dim->dim_value, (long long)want[d]);
		}
	}
	L->n->input = act_new(L, 4, 3, in->height, in->width);
	return L->n->input < 0 ? L->n->input : name_define(L, v->name, L->n->input, NULL);
}

static int import_output(struct load *L, const Onnx__GraphProto *g)
{
	struct name_entry *e;
	const struct onnx_act *A;

	if (g->n_output != 1 || !g->output[0]->name)
		return node_err(L, -ENOTSUP, "%zu outputs (one descriptor only)", g->n_output);
	e = name_slot(L, g->output[0]->name);
	if (!e->name || e->act < 0 || e->act == L->n->input)
		return node_err(L, -EINVAL, "the output is not computed from the input");
	A = &L->n->act[e->act];
	if (A->h != 1 || A->w != 1)   /* stored NHWC: a descriptor must not depend on that order */
		return node_err(L, -ENOTSUP, "an output of %d x %d x %d (flatten it to [batch, values])", A->c, A->h, A->w);
	if ((size_t)A->c * A->h * A->w > GPU_DESCRIPTOR_MAX)
		return node_err(L, -ENOTSUP, "an output of %d x %d x %d values (a descriptor of at most %d)", A->c, A->h,
				A->w, GPU_DESCRIPTOR_MAX);
	L->n->output = e->act;
	L->n->out_dim = (unsigned)(A->c * A->h * A->w);
	return 0;
}

/* ---- after the walk: folding into convolutions, then scratch slots ------------------------- */

static int uses_of(const struct gpu_onnx_net *n, int act, int *only)
{
	int c = act == n->output;

	for (int i = 0; i < n->nop; i++) {
		const struct onnx_op *o = &n->op[i];

		if (o->dead)
			continue;
		if (o->in[0] == act || o->in[1] == act) {
			c += (o->in[0] == act) + (o->in[1] == act);
			*only = i;
		}
	}
	return c;
}

/* A per-channel constant as C floats (a scalar repeated), owned by the net. */
static const float *expand(struct load *L, const float *k, int kn, int c, int negate)
{
	float *p;

	if (kn == c && !negate)
		return k;
	if (!(p = own_floats(L, (size_t)c)))
		return NULL;
	for (int i = 0; i < c; i++)
		p[i] = negate ? -k[kn == 1 ? 0 : i] : k[kn == 1 ? 0 : i];
	return p;
}

/* Fold the op at J into conv CV if it can be, exactly as the built-in nets' layers compute it:
 * (conv + bias) * mul + add, then the activation. 1 folded, 0 not, negative on no memory. */
static int fold_one(struct load *L, struct gpu_conv *cv, const struct onnx_op *o)
{
	const float *p;

	if (cv->act != GPU_ACT_NONE)
		return 0;
	if (o->kind == ONNX_OP_RELU) {
		cv->act = GPU_ACT_RELU;
		return 1;
	}
	if (o->kind == ONNX_OP_BINARY && o->in[1] < 0 && !cv->add) {
		if (o->bin == ONNX_BIN_MUL && !cv->mul) {
			if (!(p = expand(L, o->k, o->kn, cv->cout, 0)))
				return -ENOMEM;
			cv->mul = p;
			return 1;
		}
		/* x - k is x + (-k) exactly */
		if (o->bin == ONNX_BIN_ADD || (o->bin == ONNX_BIN_SUB && !o->k_first)) {
			if (!(p = expand(L, o->k, o->kn, cv->cout, o->bin == ONNX_BIN_SUB)))
				return -ENOMEM;
			cv->add = p;
			return 1;
		}
	}
	if (o->kind == ONNX_OP_AFFINE && !cv->mul && !cv->add) {
		float *b = own_floats(L, (size_t)cv->cout);

		if (!b)
			return -ENOMEM;
		for (int c = 0; c < cv->cout; c++)
			b[c] = (cv->bias ? cv->bias[c] : 0.0f) + o->pre[c];
		cv->bias = b;
		cv->mul = o->mul;
		cv->add = o->post;
		return 1;
	}
	return 0;
}

static int fold_into_convs(struct load *L)
{
	struct gpu_onnx_net *n = L->n;

	for (int i = 0; i < n->nop; i++) {
		struct onnx_op *o = &n->op[i];

		if (o->dead || o->kind != ONNX_OP_CONV)
			continue;
		for (;;) {
			int j = -1, rc;

			if (uses_of(n, o->out, &j) != 1 || j < 0)
				break;
			if ((rc = fold_one(L, &o->conv, &n->op[j])) < 0)
				return node_err(L, rc, "out of memory");
			if (!rc)
				break;
			n->op[j].dead = 1;
			o->out = n->op[j].out;
		}
	}
	return 0;
}

/* Give every activation a slot, reusing one when its last reader has run. Slots grow to the
 * biggest activation they hold; the outputs of an op never share a slot with its inputs. */
static int plan_slots(struct load *L)
{
	struct gpu_onnx_net *n = L->n;
	int *last = calloc((size_t)n->nact, sizeof(int));
	int busy[ONNX_MAX_SLOTS] = {0};

	if (!last)
		return node_err(L, -ENOMEM, "out of memory");
	for (int a = 0; a < n->nact; a++)
		last[a] = -1;
	for (int i = 0; i < n->nop; i++)
		for (int k = 0; k < 2 && !n->op[i].dead; k++)
			if (n->op[i].in[k] >= 0)
				last[n->op[i].in[k]] = i;
	last[n->output] = n->nop;
	for (int i = 0; i < n->nop; i++) {
		const struct onnx_op *o = &n->op[i];
		struct onnx_act *y = &n->act[o->out];
		size_t need = (size_t)y->c * y->h * y->w;
		int s = -1;

		if (o->dead)
			continue;
		for (int k = 0; k < n->nslot && s < 0; k++)
			if (!busy[k] && n->slot_floats[k] >= need)
				s = k;
		for (int k = 0; k < n->nslot && s < 0; k++)
			if (!busy[k])
				s = k;
		if (s < 0) {
			if (n->nslot == ONNX_MAX_SLOTS) {
				free(last);
				return node_err(L, -ENOTSUP, "more than %d activations alive at once", ONNX_MAX_SLOTS);
			}
			s = n->nslot++;
		}
		if (n->slot_floats[s] < need)
			n->slot_floats[s] = need;
		busy[s] = 1;
		y->slot = s;
		for (int k = 0; k < 2; k++)
			if (o->in[k] >= 0 && o->in[k] != n->input && last[o->in[k]] == i)
				busy[n->act[o->in[k]].slot] = 0;
	}
	free(last);
	{
		size_t floats = (size_t)n->in.width * n->in.height * 3;

		for (int s = 0; s < n->nslot; s++)
			floats += n->slot_floats[s];
		if (floats > ONNX_MAX_SCRATCH_FLOATS)
			return node_err(L, -EFBIG, "activations of %zu MB for a batch (at most %u)",
					(floats * GPU_ONNX_MAX_BATCH * sizeof(float)) >> 20,
					(unsigned)((ONNX_MAX_SCRATCH_FLOATS * GPU_ONNX_MAX_BATCH * sizeof(float)) >> 20));
	}
	for (int s = 0; s < n->nslot; s++)
		if (!(n->slot[s] = gpu_bio_alloc(n->slot_floats[s] * GPU_ONNX_MAX_BATCH * sizeof(float))))
			return node_err(L, -ENOMEM, "out of memory for activations");
	n->norm = gpu_bio_alloc((size_t)n->in.width * n->in.height * 3 * GPU_ONNX_MAX_BATCH * sizeof(float));
	return n->norm ? 0 : node_err(L, -ENOMEM, "out of memory for the input");
}

/* ---- the whole import ---------------------------------------------------------------------- */

static int import_graph(struct load *L, const Onnx__ModelProto *m, const struct gpu_onnx_input *in)
{
	const Onnx__GraphProto *g = m->graph;
	int rc;

	for (size_t i = 0; i < m->n_opset_import; i++)
		if (!m->opset_import[i]->domain || !*m->opset_import[i]->domain ||
		    strcmp(m->opset_import[i]->domain, "ai.onnx") == 0)
			L->opset = (int)m->opset_import[i]->version;
	if (!g)
		return node_err(L, -EBADMSG, "no graph");
	if (L->opset < 7 || L->opset > 21)
		return node_err(L, -ENOTSUP, "opset %d (7..21)", L->opset);
	if (g->n_node > GPU_ONNX_MAX_NODES || g->n_initializer > GPU_ONNX_MAX_NODES * 4)
		return node_err(L, -EFBIG, "%zu nodes, %zu initializers (at most %d, %d)", g->n_node,
				g->n_initializer, GPU_ONNX_MAX_NODES, GPU_ONNX_MAX_NODES * 4);
	L->tabcap = 64;
	while (L->tabcap < 2 * (g->n_initializer + g->n_input + 4 * g->n_node + 1))
		L->tabcap *= 2;
	if (!(L->tab = calloc(L->tabcap, sizeof(*L->tab))))
		return node_err(L, -ENOMEM, "out of memory");
	for (size_t i = 0; i < g->n_initializer; i++) {
		struct onnx_const *k = const_from_tensor(L, g->initializer[i]);

		if (!k)
			return -EINVAL;
		if ((rc = name_define(L, g->initializer[i]->name, -1, k)))
			return rc;
	}
	if ((rc = import_input(L, g, in)))
		return rc;
	for (size_t i = 0; i < g->n_node; i++) {
		/* the outputs past the first (Dropout's mask, BatchNormalization's training
		 * statistics) are never defined: a node reading one fails to resolve it */
		if ((rc = import_node(L, g->node[i])))
			return rc;
	}
	L->node = NULL;
	if ((rc = import_output(L, g)) || (rc = fold_into_convs(L)) || (rc = plan_slots(L)))
		return rc;
	return 0;
}

void gpu_onnx_free(struct gpu_onnx_net **np)
{
	struct gpu_onnx_net *n = np ? *np : NULL;

	if (!n)
		return;
	for (int i = 0; i < n->nowned; i++)
		free(n->owned[i]);
	free(n->owned);
	for (int s = 0; s < n->nslot; s++)
		gpu_bio_free(n->slot[s]);
	gpu_bio_free(n->norm);
	free(n->act);
	free(n->op);
	free(n);
	*np = NULL;
}

int gpu_onnx_load(struct gpu_onnx_net **out, const uint8_t *buf, size_t len, const char *name,
		  const struct gpu_onnx_input *in, char *err, size_t errlen)
{
	struct load L = {.file = name ? name : "model.onnx", .err = err, .errlen = errlen};
	Onnx__ModelProto *m;
	int rc;

	if (len > GPU_ONNX_MAX_FILE)
		return vg_errf(err, errlen, -EFBIG, "%s: %zu bytes (at most %u)", L.file, len, GPU_ONNX_MAX_FILE);
	if (in->width < 1 || in->height < 1 || in->width > 1024 || in->height > 1024)
		return vg_errf(err, errlen, -EINVAL, "%s: input %dx%d (1..1024)", L.file, in->width, in->height);
	/* no message in onnx.proto's subset can contain itself, so unpacking cannot recurse deeply */
	if (!(m = onnx__model_proto__unpack(NULL, len, buf)))
		return vg_errf(err, errlen, -EBADMSG, "%s: not an ONNX model (the protobuf does not parse)", L.file);
	if (!(L.n = calloc(1, sizeof(*L.n)))) {
		rc = vg_errf(err, errlen, -ENOMEM, "%s: out of memory", L.file);
		goto out_free_proto;
	}
	L.n->in = *in;
	L.n->input = L.n->output = -1;
	rc = import_graph(&L, m, in);
	if (rc)
		gpu_onnx_free(&L.n);
	else
		*out = L.n;
	for (int i = 0; i < L.nconst; i++) {
		free(L.consts[i]->i);   /* float data belongs to the net (own_floats) */
		free(L.consts[i]);
	}
	free(L.consts);
	free(L.tab);
out_free_proto:
	onnx__model_proto__free_unpacked(m, NULL);
	return rc;
}
