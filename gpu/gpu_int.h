/*
 * gpu/'s private layouts: the face-api weight files, the reference layer kernels (plain C, the
 * ones every faster kernel is checked against) and the three nets. Only gpu/ and its tests
 * include this.
 */
#ifndef GPU_INT_H
#define GPU_INT_H

#include <stddef.h>
#include <stdint.h>

#include "gpu.h"

/* ---- weights: face-api manifests (face-nets.md §2) ------------------------------------------ */

#define GPU_TENSOR_MAX_DIMS 4
#define GPU_TENSOR_NAME_MAX 96
#define GPU_MANIFEST_MAX_BYTES (1u << 20)   /* the biggest shipped manifest is 40 kB */
#define GPU_WEIGHTS_MAX_BYTES (64u << 20)   /* the biggest .bin is 6.4 MB */
#define GPU_WEIGHTS_MAX_TENSORS 1024        /* the most in one shipped manifest is 151 */

struct gpu_tensor {
	char name[GPU_TENSOR_NAME_MAX];
	int ndim;
	int shape[GPU_TENSOR_MAX_DIMS];
	size_t count;   /* elements */
	float *data;    /* dequantized float32; NULL for int32 constants (never used by the nets) */
};

struct gpu_weights {
	struct gpu_tensor *t;
	int n;
	float *pool;    /* every tensor's data, one allocation */
	uint8_t digest[32]; /* sha256 of the manifest's bytes then the .bin files' (gpu_weights_load) */
};

/*
 * Parse a manifest (JSON, JLEN bytes) and the concatenation of its .bin files (BLEN bytes).
 * Every size is checked: the bytes the manifest describes must equal BLEN exactly. Returns 0 or
 * -EINVAL / -EBADMSG / -ENOMEM with one line in ERR; *OUT untouched on error.
 */
int gpu_weights_parse(struct gpu_weights **out, const char *json, size_t jlen, const uint8_t *bin,
		      size_t blen, char *err, size_t errlen);

/* Read DIR/MODEL-weights_manifest.json and the .bin files it names (in DIR), then parse. */
int gpu_weights_load(struct gpu_weights **out, const char *dir, const char *model, char *err,
		     size_t errlen);

void gpu_weights_close(struct gpu_weights **w);

/* gpu_model_info.c: INFO of the face-api model whose three nets' weights these are. */
void gpu_model_info_fill(struct gpu_model_info *info, const struct gpu_weights *ssd, const struct gpu_weights *lm,
			 const struct gpu_weights *rec);

/*
 * The float data of tensor NAME, whose shape must be exactly SHAPE (NDIM dims); NULL with one
 * line in ERR when it is missing or shaped differently.
 */
const float *gpu_weights_get(const struct gpu_weights *w, const char *name, int ndim,
			     const int *shape, char *err, size_t errlen);

/* ---- reference kernels (NHWC, batch 1, float32) -------------------------------------------- */

/* TF's VALID and SAME (face-api's nets); EXPLICIT: the gpu_conv's own pads (ONNX models) */
enum gpu_pad { GPU_PAD_VALID, GPU_PAD_SAME, GPU_PAD_EXPLICIT };
enum gpu_act { GPU_ACT_NONE, GPU_ACT_RELU, GPU_ACT_RELU6, GPU_ACT_LEAKY /* 0.1 */ };

/* TF's output size and leading pad: same = ceil(in/s), pad total split floor/rest. */
void gpu_out_dim(int in, int k, int s, enum gpu_pad pad, int *out /* OUT */, int *pad_before /* OUT */);

/*
 * out = act(((conv(in, filt) + bias) * scale_w + scale_b)): filt is HWIO [kh][kw][cin][cout];
 * bias, scale_w and scale_b may be NULL. The separate multiply-add after the bias is what tfjs
 * does op by op, kept so that the result rounds the same way.
 */
void gpu_conv2d_ref(const float *in, int h, int w, int cin, const float *filt, int kh, int kw,
		    int cout, int stride, enum gpu_pad pad, const float *bias, const float *scale_w,
		    const float *scale_b, enum gpu_act act, float *out);

/* Depthwise 3x3-style conv, filt [kh][kw][c], no bias, no activation. */
void gpu_dwconv2d_ref(const float *in, int h, int w, int c, const float *filt, int k, int stride,
		      enum gpu_pad pad, float *out);

/* Max (pads are -inf) and average (pads ignored) pooling, k x k, stride s. */
void gpu_maxpool_ref(const float *in, int h, int w, int c, int k, int s, enum gpu_pad pad, float *out);
void gpu_avgpool_ref(const float *in, int h, int w, int c, int k, int s, enum gpu_pad pad, float *out);

/*
 * face-api's toBatchTensor on 8-bit RGB: pad the W x H image to a square with zeros (center:
 * centered as face-api rounds it; else all padding bottom/right), then tf.image.resizeBilinear to
 * SIZE x SIZE (align_corners and half_pixel_centers false). STRIDE is the source row pitch in
 * bytes. out is SIZE*SIZE*3 floats of raw 0..255 values.
 */
void gpu_to_batch_ref(const uint8_t *rgb, int w, int h, size_t stride, int size, int center,
		      float *out);

/* ---- one conv layer, run by oneDNN or by the reference kernels ---------------------------- */

/*
 * out = act((conv(in, filt) + bias) * mul + add), per output channel; any of bias/mul/add may
 * be NULL. depthwise: filt is [k][k][cin] and cout == cin.
 */
struct gpu_conv {
	const float *filt, *bias, *mul, *add;
	int k, cin, cout, stride, depthwise;
	enum gpu_pad pad;
	enum gpu_act act;
	int pads[4];   /* GPU_PAD_EXPLICIT only: top, left, bottom, right (ONNX's pads, reordered) */
	int groups;    /* > 1 (not depthwise): GROUPS independent convs over channel slices, filt
			  [k][k][cin / groups][cout] (ONNX imports); 0 or 1: dense */
};

/*
 * C's output size on an H x W input and its pads (top, left, bottom, right; a SAME pad past the
 * input's end may be negative, never read), whatever C's padding kind.
 */
void gpu_conv_out_dims(const struct gpu_conv *c, int h, int w, int *oh /* OUT */, int *ow /* OUT */,
		       int pad[4] /* OUT */);

/* The oneDNN backend (cpu/gpu_dnnl.c): a context of cached primitives, one thread at a time. */
struct gpu_dnnl;

/* BF16: the fast mode: activations and weights rounded to bf16, f32 accumulation and output. */
int gpu_dnnl_create(struct gpu_dnnl **out, int bf16, char *err, size_t errlen);
void gpu_dnnl_destroy(struct gpu_dnnl **d);
/* 0, or -EIO when oneDNN cannot run this layer (then counted; the caller runs the reference). */
int gpu_dnnl_conv(struct gpu_dnnl *d, int nb, const struct gpu_conv *c, const float *in, int h, int w,
		  float *out);
int gpu_dnnl_fallbacks(const struct gpu_dnnl *d);

/*
 * The reference kernels alone, in plain C (gpu_layers_ref.c): what oneDNN is checked against, so
 * it never calls oneDNN. NB images of H x W in a row (NHWC, batch NB).
 */
void gpu_conv_ref(int nb, const struct gpu_conv *c, const float *in, int h, int w, float *out,
		  int *oh /* OUT */, int *ow /* OUT */);

/*
 * The one place that chooses a backend for a layer (gpu_conv.c): the reference kernels alone
 * (D NULL) or oneDNN with the reference as fallback. NB images of H x W in a row (NHWC, batch NB).
 */
void gpu_conv_run(struct gpu_dnnl *d, int nb, const struct gpu_conv *c, const float *in, int h, int w,
		  float *out, int *oh /* OUT */, int *ow /* OUT */);

/* ---- biometric scratch (gpu_mem.c): MADV_DONTDUMP, zeroed when freed ------------------------ */

void *gpu_bio_alloc(size_t size);
void gpu_bio_free(void *p);   /* NULL is fine */

/* ---- the nets ------------------------------------------------------------------------------- */

struct gpu_ssd;
struct gpu_lm;
struct gpu_rec;

int gpu_ssd_create(struct gpu_ssd **out, const struct gpu_weights *w, char *err, size_t errlen);
void gpu_ssd_destroy(struct gpu_ssd **net);
/* INPUT is the 512x512x3 raw-pixel tensor; writes 5118 boxes [ymin,xmin,ymax,xmax] and scores. */
void gpu_ssd_forward(struct gpu_ssd *net, struct gpu_dnnl *d, const float *input, float *boxes, float *scores);

int gpu_lm_create(struct gpu_lm **out, const struct gpu_weights *w, char *err, size_t errlen);
void gpu_lm_destroy(struct gpu_lm **net);
/* INPUT is 112x112x3 raw pixels; writes the 136 raw outputs (x,y interleaved, 0..1 of the square). */
void gpu_lm_forward(struct gpu_lm *net, struct gpu_dnnl *d, const float *input, float *out136);

int gpu_rec_create(struct gpu_rec **out, const struct gpu_weights *w, char *err, size_t errlen);
void gpu_rec_destroy(struct gpu_rec **net);
/* INPUT is NB 150x150x3 raw-pixel crops in a row (NB <= GPU_REC_BATCH); writes NB 128-d descriptors. */
#define GPU_REC_BATCH 8
void gpu_rec_forward(struct gpu_rec *net, struct gpu_dnnl *d, const float *input, int nb, float *out128);

#define GPU_SSD_ANCHORS 5118

/*
 * The nets' resolved layers, public inside gpu/ so that another backend (gpu/cuda) runs the very
 * tensors the CPU backend checked at open rather than resolving them a second time. Pointers into
 * the weights are the loader's; the derived arrays (the SSD's folded batch norm) are the net's.
 */
struct ssd_dw {
	const float *filt, *gamma, *beta, *mean, *var;
	float *negmean, *mul, *add;   /* BN: (x + -mean) * mul + beta, mul = gamma/sqrt(var+eps) */
	int c, stride;
};

struct ssd_pw {
	const float *filt, *off;
	int k, cin, cout, stride;
};

struct ssd_pred {
	const float *box_w, *box_b, *cls_w, *cls_b;
	int cin, anchors;
};

struct gpu_ssd {
	struct ssd_pw conv0;
	struct ssd_dw dw[14];
	struct ssd_pw pw[14];
	struct ssd_pw extra[8];
	struct ssd_pred pred[6];
	const float *anchors;   /* [5118][4] ymin xmin ymax xmax */
	float *a, *b, *conv11, *ex[8], *raw_box, *raw_cls, *bnbuf;
};

struct lm_sep {
	const float *dw, *pw, *bias;   /* dw NULL: plain 3x3 conv in pw (dense0/conv0) */
	int cin, cout;
};

struct gpu_lm {
	struct lm_sep conv[4][4];
	const float *fc_w, *fc_b;
	float *buf[6];
};

struct rec_conv {
	const float *filt, *bias, *sw, *sb;
	int k, cin, cout;
};

struct rec_block {
	struct rec_conv c1, c2;
	int down;
};

#define GPU_REC_BLOCKS 14

struct gpu_rec {
	struct rec_conv stem;
	struct rec_block blk[GPU_REC_BLOCKS];
	const float *fc;
	float *buf[4];
};

/* The SSD's batch-norm epsilon (face-nets.md §7): mul = gamma / sqrt(var + eps). */
#define GPU_SSD_BN_EPS 0.0010000000474974513f

/* ---- another backend for the nets (gpu/cuda) ---------------------------------------------- */

/*
 * The three forward passes, run elsewhere: each has the CPU forward's arguments and results
 * (host memory in and out) and returns 0, or a negative errno, after which the CPU runs that
 * pass instead and the failure is counted. The rest of the pipeline (crops, NMS, landmarks,
 * alignment, quality) stays as it is, so results differ only by what the nets compute.
 */
struct gpu_offload {
	void *ctx;
	int (*ssd)(void *ctx, const float *in512, float *boxes, float *scores);
	int (*lm)(void *ctx, const float *in112, float *out136);
	int (*rec)(void *ctx, const float *in150, int nb, float *out128);
};

/* Use O's passes from now on (O is copied; NULL: the CPU backend again). */
void gpu_model_set_offload(struct gpu_model *m, const struct gpu_offload *o);

/* The model's nets, for another backend to copy (never NULL after a successful open). */
const struct gpu_ssd *gpu_model_ssd(const struct gpu_model *m);
const struct gpu_lm *gpu_model_lm(const struct gpu_model *m);
const struct gpu_rec *gpu_model_rec(const struct gpu_model *m);


/* The tiny face detector (face-nets.md §8) at a 416 input: 13x13 cells x 5 anchors x 5 values. */
#define GPU_TINY_INPUT 416
#define GPU_TINY_CELLS 13
struct gpu_tiny;
int gpu_tiny_create(struct gpu_tiny **out, const struct gpu_weights *w, char *err, size_t errlen);
void gpu_tiny_destroy(struct gpu_tiny **net);
/* INPUT is 416x416x3 raw pixels; writes the 13x13x25 raw outputs. */
void gpu_tiny_forward(struct gpu_tiny *net, struct gpu_dnnl *d, const float *input, float *out);

/* ---- ONNX model folders (gpu_model_folder.c; gpu.h says what a folder holds) --------------- */

#define GPU_MODEL_MANIFEST "vigil-model.json"
#define GPU_MODEL_DEFAULT_DETECTOR "../face-api-1.7.15/model"   /* relative to the model folder */
#define GPU_MODEL_PATH_MAX 4096

/* How raw 0..255 pixels become an ONNX net's input: (x - mean[c]) / std[c], channels in this order. */
struct gpu_onnx_input {
	int width, height;
	float mean[3], std[3];   /* in the net's channel order */
	int bgr;                 /* 1: the net's channel 0 is blue */
};

struct gpu_model_manifest {
	struct gpu_model_info info;         /* id, digest (the ONNX file's sha256), dim, metric, threshold */
	struct gpu_onnx_input input;
	char onnx_path[GPU_MODEL_PATH_MAX];
	char detector_dir[GPU_MODEL_PATH_MAX];   /* the face-api folder of the detector and landmarks */
};

/* 1 when DIR holds a vigil-model.json (an ONNX model folder), else 0 (a face-api folder). */
int gpu_model_folder_is_onnx(const char *dir);

/* Read and check DIR's vigil-model.json into M. 0, or -errno with one line in ERR naming the key. */
int gpu_model_manifest_read(const char *dir, struct gpu_model_manifest *m, char *err, size_t errlen);

/* The same, of the manifest's LEN bytes of TEXT (outside input: fuzzed), for the folder DIR. */
int gpu_model_manifest_parse(const char *text, size_t len, const char *dir, struct gpu_model_manifest *m, char *err,
			     size_t errlen);

/* Read M's ONNX file (malloc'd into *OUT, *LEN bytes) and check its sha256. 0, -EBADMSG on a
 * digest mismatch, or vg_file_read's errors, with one line in ERR. */
int gpu_model_onnx_read(const struct gpu_model_manifest *m, uint8_t **out, size_t *len, char *err, size_t errlen);

#endif /* GPU_INT_H */
