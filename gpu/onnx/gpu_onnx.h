/*
 * gpu/onnx/'s private interface: a face-recognition net brought as an ONNX file, imported into
 * the layers the built-in nets run on (gpu_conv_run: oneDNN, else the reference kernels; the
 * reference pools), so that an ONNX export of face-api's own net gives its descriptors bit for
 * bit. Only gpu/ (gpu_faces.c, gpu_model_folder.c) and its tests include this.
 *
 * The importer (gpu_onnx_load.c) reads outside input: every size, index and shape in the file is
 * checked, and anything it cannot run exactly (an operator, an attribute value, a broadcast) is
 * refused at load with one line naming the node and operator. A loaded net runs on one thread at
 * a time (it owns its activations; gpu_onnx_forward never allocates).
 */
#ifndef GPU_ONNX_H
#define GPU_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "../gpu_int.h"

#define GPU_ONNX_MAX_FILE (512u << 20)  /* the biggest face-recognition ONNX we know is ~250 MB (IResNet-100) */
#define GPU_ONNX_MAX_NODES 8192
#define GPU_ONNX_MAX_BATCH GPU_REC_BATCH

struct gpu_onnx_net;

/*
 * Import the ONNX model in BUF (LEN bytes; the caller's, not kept) for inputs shaped as IN says.
 * NAME (the file's name) starts every error line. Returns 0; -EBADMSG (not a protobuf model),
 * -ENOTSUP (an operator or attribute it does not run, named), -EINVAL (inconsistent shapes or
 * indices), -EFBIG (over the bounds above), -ENOMEM. *OUT untouched on error.
 */
int gpu_onnx_load(struct gpu_onnx_net **out, const uint8_t *buf, size_t len, const char *name,
		  const struct gpu_onnx_input *in, char *err, size_t errlen);

void gpu_onnx_free(struct gpu_onnx_net **net);   /* sets *NET = NULL; NULL is fine */

/* The descriptor's length: the output's elements per image. */
unsigned gpu_onnx_output_dim(const struct gpu_onnx_net *net);

/* The convolutions, depthwise ones among them, left after folding (for tests and logs). */
int gpu_onnx_conv_count(const struct gpu_onnx_net *net);

/*
 * Run the net on NB (1..GPU_ONNX_MAX_BATCH) images of raw pixels, NHWC in RGB order (IN's
 * width x height x 3 floats each, 0..255), normalised as IN says; writes NB x output_dim floats.
 * D NULL: the reference kernels alone.
 */
void gpu_onnx_forward(struct gpu_onnx_net *net, struct gpu_dnnl *d, const float *rgb, int nb,
		      float *out);

/* ---- the imported net, shared by gpu_onnx_load.c (builds it) and gpu_onnx_run.c (runs it) ---- */

/* An activation, per image: rank 4 is C x H x W (stored NHWC), rank 2 is C features. */
struct onnx_act {
	int rank, c, h, w;
	int slot;   /* the scratch buffer it lives in; -1 for the net's input */
};

enum onnx_op_kind {
	ONNX_OP_CONV,       /* gpu_conv_run, with what followed it folded in */
	ONNX_OP_AFFINE,     /* per channel (x + pre) * mul + post: a BatchNormalization left alone */
	ONNX_OP_BINARY,     /* Add, Sub, Mul, Div of two activations or of one and a constant */
	ONNX_OP_PRELU,
	ONNX_OP_RELU,
	ONNX_OP_MAXPOOL,
	ONNX_OP_AVGPOOL,
	ONNX_OP_GLOBALAVG,
	ONNX_OP_GEMM,       /* Gemm and MatMul: out = in x W (+ bias) */
	ONNX_OP_FLATTEN,    /* rank 4 -> rank 2 in ONNX's NCHW order (the storage is NHWC) */
	ONNX_OP_CONCAT,     /* along the channels */
	ONNX_OP_PAD,        /* zeros around C, H, W */
	ONNX_OP_REDUCEL2,   /* one value per image: the L2 norm */
	ONNX_OP_LPNORM,     /* x / ||x||2 per image */
};

enum onnx_binop { ONNX_BIN_ADD, ONNX_BIN_SUB, ONNX_BIN_MUL, ONNX_BIN_DIV };

struct onnx_op {
	enum onnx_op_kind kind;
	int in[2];      /* activations; in[1] is -1 when the second operand is the constant K */
	int out;
	int dead;       /* folded into the conv before it */
	enum onnx_binop bin;
	const float *k; /* constant operand: KN == 1 (scalar) or KN == channels */
	int kn;
	int k_first;    /* binary: the constant is the left operand */
	const float *pre, *mul, *post;   /* affine */
	const float *w, *bias;           /* gemm: W is [K][M] */
	int gemm_k, gemm_m;
	struct gpu_conv conv;
	int pool_k, pool_s;
	enum gpu_pad pool_pad;
	int pad[6];     /* pad: C, H, W before, then C, H, W after */
};

#define ONNX_MAX_SLOTS 64

struct gpu_onnx_net {
	struct gpu_onnx_input in;
	struct onnx_act *act;
	int nact;
	struct onnx_op *op;
	int nop;
	int input, output;
	unsigned out_dim;
	float **owned;          /* every constant array the ops point into */
	int nowned, capowned;
	size_t slot_floats[ONNX_MAX_SLOTS];   /* per image */
	float *slot[ONNX_MAX_SLOTS];          /* GPU_ONNX_MAX_BATCH images each, biometric */
	int nslot;
	float *norm;            /* the normalised input, GPU_ONNX_MAX_BATCH images */
};

#endif /* GPU_ONNX_H */
