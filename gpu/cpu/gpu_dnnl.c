/*
 * The oneDNN (libdnnl) convolutions of the CPU backend: NHWC activations, fp32, the scale/BN
 * layers folded into the weights and bias (w' = w*s, b' = b*s + s_b: ~1 ulp from tfjs's op-by-op
 * rounding), ReLU/ReLU6 as post-ops, weights reordered once into oneDNN's blocked layout.
 *
 * Layers are cached by the addresses of their arrays (with every shape field): the weights must
 * outlive the context, as the nets' do. Every layer's primitive is made the first time its (filter, input size) pair is seen and
 * cached; gpu_model_open runs one warm-up pass so that inference never creates one. The plain C
 * kernels (../gpu_layers_ref.c) stay the reference: tests/gpu/test_dnnl.c checks these against
 * them layer type by layer type.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "../gpu_int.h"
#include "vg_base.h"

#define DNNL_CACHE_MAX 1024  /* SSD 47 + landmarks 31 + 8 batch sizes x 29 descriptor layers = 310; an ONNX
                                 descriptor net of 50 convs: 8 x 50 more */

struct dnnl_entry {
	struct gpu_conv c;   /* the layer as given: its arrays are cached by address */
	int nb, h, w;
	dnnl_primitive_t prim;
	dnnl_memory_t src, wei, bias, dst;
	dnnl_primitive_t to_bf16;   /* bf16 mode: f32 activations -> src16 before the conv */
	dnnl_memory_t src16;
};

struct gpu_dnnl {
	dnnl_engine_t eng;
	dnnl_stream_t stream;
	struct dnnl_entry e[DNNL_CACHE_MAX];
	int n;
	int failures;   /* layers that fell back to the reference kernel */
	int bf16;       /* bf16 activations and weights, f32 accumulation and output (fast mode) */
};

int gpu_dnnl_create(struct gpu_dnnl **out, int bf16, char *err, size_t errlen)
{
	struct gpu_dnnl *d = calloc(1, sizeof(*d));

	if (!d)
		return vg_errf(err, errlen, -ENOMEM, "onednn: out of memory");
	d->bf16 = bf16;
	if (dnnl_engine_create(&d->eng, dnnl_cpu, 0) != dnnl_success) {
		free(d);
		return vg_errf(err, errlen, -ENODEV, "onednn: no CPU engine");
	}
	if (dnnl_stream_create(&d->stream, d->eng, dnnl_stream_default_flags) != dnnl_success) {
		dnnl_engine_destroy(d->eng);
		free(d);
		return vg_errf(err, errlen, -ENODEV, "onednn: no stream");
	}
	*out = d;
	return 0;
}

static void entry_free(struct dnnl_entry *e)
{
	if (e->prim)
		dnnl_primitive_destroy(e->prim);
	if (e->to_bf16)
		dnnl_primitive_destroy(e->to_bf16);
	if (e->src16)
		dnnl_memory_destroy(e->src16);
	if (e->src)
		dnnl_memory_destroy(e->src);
	if (e->wei)
		dnnl_memory_destroy(e->wei);
	if (e->bias)
		dnnl_memory_destroy(e->bias);
	if (e->dst)
		dnnl_memory_destroy(e->dst);
	memset(e, 0, sizeof(*e));
}

void gpu_dnnl_destroy(struct gpu_dnnl **dp)
{
	struct gpu_dnnl *d = dp ? *dp : NULL;

	if (!d)
		return;
	for (int i = 0; i < d->n; i++)
		entry_free(&d->e[i]);
	dnnl_stream_destroy(d->stream);
	dnnl_engine_destroy(d->eng);
	free(d);
	*dp = NULL;
}

int gpu_dnnl_fallbacks(const struct gpu_dnnl *d)
{
	return d ? d->failures : 0;
}

/* Reorder USER (tag UTAG, dims of MD) into a new memory of layout WANT; folds nothing. */
static int reorder_into(struct gpu_dnnl *d, const dnnl_memory_desc_t *user_md, void *user,
			const dnnl_memory_desc_t *want, dnnl_memory_t *out)
{
	dnnl_memory_t um = NULL, wm = NULL;
	dnnl_primitive_desc_t rpd = NULL;
	dnnl_primitive_t r = NULL;
	int ok = 0;

	if (dnnl_memory_create(&um, user_md, d->eng, user) != dnnl_success ||
	    dnnl_memory_create(&wm, want, d->eng, DNNL_MEMORY_ALLOCATE) != dnnl_success ||
	    dnnl_reorder_primitive_desc_create(&rpd, user_md, d->eng, want, d->eng, NULL) != dnnl_success ||
	    dnnl_primitive_create(&r, rpd) != dnnl_success)
		goto out;
	{
		dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, wm}};

		if (dnnl_primitive_execute(r, d->stream, 2, args) != dnnl_success ||
		    dnnl_stream_wait(d->stream) != dnnl_success)
			goto out;
	}
	ok = 1;
out:
	if (r)
		dnnl_primitive_destroy(r);
	if (rpd)
		dnnl_primitive_desc_destroy(rpd);
	if (um)
		dnnl_memory_destroy(um);
	if (!ok && wm)
		dnnl_memory_destroy(wm);
	if (ok)
		*out = wm;
	return ok ? 0 : -EIO;
}

/* The memory descriptors of one layer and the convolution over them. */
struct conv_mds {
	dnnl_memory_desc_t src, src16, dst, bias, wei_any, wei_user;
	dnnl_convolution_desc_t cd;
};

/*
 * C's descriptors for NB images of H x W: NHWC f32 activations in and out, the conv's input and
 * weights in CT (bf16 in the fast mode; weights in whatever layout oneDNN picks), TF's pads.
 * Returns 0 or -EIO.
 */
static int conv_mds_init(struct conv_mds *m, int nb, const struct gpu_conv *c, int h, int w,
			 dnnl_data_type_t ct)
{
	int g = c->depthwise ? c->cin : (c->groups > 1 ? c->groups : 1);
	int cout = c->depthwise ? c->cin : c->cout;
	int oh, ow, pad[4];

	gpu_conv_out_dims(c, h, w, &oh, &ow, pad);
	{
		dnnl_dims_t sd = {nb, c->cin, h, w}, dd = {nb, cout, oh, ow}, bd = {cout};
		dnnl_dims_t strides = {c->stride, c->stride};
		dnnl_dims_t padl = {pad[0], pad[1]};
		/* the right/bottom pads the last window reads, never negative (oneDNN's rule) */
		dnnl_dims_t padr = {(oh - 1) * c->stride + c->k - h - pad[0], (ow - 1) * c->stride + c->k - w - pad[1]};

		if (padr[0] < 0)
			padr[0] = 0;
		if (padr[1] < 0)
			padr[1] = 0;

		if (dnnl_memory_desc_init_by_tag(&m->src, 4, sd, dnnl_f32, dnnl_nhwc) ||
		    dnnl_memory_desc_init_by_tag(&m->src16, 4, sd, ct, dnnl_nhwc) ||
		    dnnl_memory_desc_init_by_tag(&m->dst, 4, dd, dnnl_f32, dnnl_nhwc) ||
		    dnnl_memory_desc_init_by_tag(&m->bias, 1, bd, dnnl_f32, dnnl_x))
			return -EIO;
		if (c->depthwise || g > 1) {   /* our [k][k][cin/g][g][cout/g] is oneDNN's hwigo */
			dnnl_dims_t wd = {g, cout / g, c->cin / g, c->k, c->k};
			if (dnnl_memory_desc_init_by_tag(&m->wei_any, 5, wd, ct, dnnl_format_tag_any) ||
			    dnnl_memory_desc_init_by_tag(&m->wei_user, 5, wd, dnnl_f32, dnnl_hwigo))
				return -EIO;
		} else {
			dnnl_dims_t wd = {c->cout, c->cin, c->k, c->k};
			if (dnnl_memory_desc_init_by_tag(&m->wei_any, 4, wd, ct, dnnl_format_tag_any) ||
			    dnnl_memory_desc_init_by_tag(&m->wei_user, 4, wd, dnnl_f32, dnnl_hwio))
				return -EIO;
		}
		if (dnnl_convolution_forward_desc_init(&m->cd, dnnl_forward_inference, dnnl_convolution_direct,
						       &m->src16, &m->wei_any, &m->bias, &m->dst, strides,
						       padl, padr))
			return -EIO;
	}
	return 0;
}

/* C's activation as a post-op in ATTR (both the caller's to destroy, also on error). 0 or -EIO. */
static int conv_attr_init(const struct gpu_conv *c, dnnl_primitive_attr_t *attr, dnnl_post_ops_t *po)
{
	if (dnnl_primitive_attr_create(attr) || dnnl_post_ops_create(po))
		return -EIO;
	if (c->act == GPU_ACT_RELU && dnnl_post_ops_append_eltwise(*po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f))
		return -EIO;
	if (c->act == GPU_ACT_RELU6 && dnnl_post_ops_append_eltwise(*po, 1.0f, dnnl_eltwise_clip, 0.0f, 6.0f))
		return -EIO;
	if (c->act == GPU_ACT_LEAKY && dnnl_post_ops_append_eltwise(*po, 1.0f, dnnl_eltwise_relu, 0.1f, 0.0f))
		return -EIO;
	if (dnnl_primitive_attr_set_post_ops(*attr, *po))
		return -EIO;
	return 0;
}

/*
 * fold: w' = w * mul[co], b' = bias*mul + add (mul/add from scale or BN), into WF (NW weights)
 * and BF (COUT biases), malloc'd: the caller frees both, also on error. 0 or -ENOMEM.
 */
static int conv_fold(const struct gpu_conv *c, size_t nw, int cout, float **wf, float **bf)
{
	*wf = malloc(nw * sizeof(float));
	*bf = malloc((size_t)cout * sizeof(float));
	if (!*wf || !*bf)
		return -ENOMEM;
	for (size_t i = 0; i < nw; i++) {
		int co = c->depthwise ? (int)(i % (size_t)c->cin) : (int)(i % (size_t)c->cout);
		(*wf)[i] = c->filt[i] * (c->mul ? c->mul[co] : 1.0f);
	}
	for (int co = 0; co < cout; co++) {
		float b = c->bias ? c->bias[co] : 0.0f;
		if (c->mul)
			b *= c->mul[co];
		if (c->add)
			b += c->add[co];
		(*bf)[co] = b;
	}
	return 0;
}

/*
 * E's memories: the folded weights WF reordered into PD's layout, the bias BF (COUT floats)
 * copied, src/dst without data (set per call), and in the bf16 mode the reorder of the f32
 * activations into src16. On error what was made stays in E for entry_free(). 0 or -EIO.
 */
static int entry_memories(struct gpu_dnnl *d, struct dnnl_entry *e, const dnnl_primitive_desc_t pd,
			  const struct conv_mds *m, float *wf, const float *bf, int cout)
{
	{
		const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);

		if (!wmd || reorder_into(d, &m->wei_user, wf, wmd, &e->wei))
			return -EIO;
	}
	if (dnnl_memory_create(&e->bias, &m->bias, d->eng, DNNL_MEMORY_ALLOCATE) ||
	    dnnl_memory_create(&e->src, &m->src, d->eng, DNNL_MEMORY_NONE) ||
	    dnnl_memory_create(&e->dst, &m->dst, d->eng, DNNL_MEMORY_NONE))
		return -EIO;
	if (d->bf16) {
		dnnl_primitive_desc_t rpd = NULL;
		int bad = dnnl_memory_create(&e->src16, &m->src16, d->eng, DNNL_MEMORY_ALLOCATE) ||
			  dnnl_reorder_primitive_desc_create(&rpd, &m->src, d->eng, &m->src16, d->eng, NULL) ||
			  dnnl_primitive_create(&e->to_bf16, rpd);

		if (rpd)
			dnnl_primitive_desc_destroy(rpd);
		if (bad)
			return -EIO;
	}
	{
		void *bh = NULL;

		if (dnnl_memory_get_data_handle(e->bias, &bh) || !bh)
			return -EIO;
		memcpy(bh, bf, (size_t)cout * sizeof(float));
	}
	return 0;
}

static struct dnnl_entry *entry_make(struct gpu_dnnl *d, int nb, const struct gpu_conv *c, int h, int w)
{
	struct dnnl_entry *e;
	struct conv_mds m;
	dnnl_data_type_t ct = d->bf16 ? dnnl_bf16 : dnnl_f32;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	dnnl_primitive_desc_t pd = NULL;
	int cout = c->depthwise ? c->cin : c->cout;
	size_t nw = (size_t)c->k * c->k * c->cin * (c->depthwise ? 1 : c->cout) / (!c->depthwise && c->groups > 1 ? c->groups : 1);
	float *wf = NULL, *bf = NULL;
	int ok = 0;

	if (d->n >= DNNL_CACHE_MAX)
		return NULL;
	e = &d->e[d->n];
	if (conv_mds_init(&m, nb, c, h, w, ct) || conv_attr_init(c, &attr, &po))
		goto out;
	if (dnnl_primitive_desc_create(&pd, &m.cd, attr, d->eng, NULL) ||
	    dnnl_primitive_create(&e->prim, pd))
		goto out;
	if (conv_fold(c, nw, cout, &wf, &bf) || entry_memories(d, e, pd, &m, wf, bf, cout))
		goto out;
	e->c = *c;
	e->nb = nb;
	e->h = h;
	e->w = w;
	d->n++;
	ok = 1;
out:
	free(wf);
	free(bf);
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (po)
		dnnl_post_ops_destroy(po);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	if (!ok) {
		entry_free(e);
		return NULL;
	}
	return e;
}

/*
 * Measured (bench_facenet, one core of the AVX-512 dev VM): the descriptor net's 29 layers in
 * 3.3-3.7 ms (~150 GFLOP/s), SSD 512 in 35 ms; bf16 descriptors in 2.2-2.4 ms.
 *
 * out = act(conv(in) * mul + (bias * mul + add)). Returns 0, or -EIO when oneDNN cannot do it
 * (the caller then runs the reference kernel).
 */
int gpu_dnnl_conv(struct gpu_dnnl *d, int nb, const struct gpu_conv *c, const float *in, int h, int w,
		  float *out)
{
	struct dnnl_entry *e = NULL;

	for (int i = 0; i < d->n; i++) {
		const struct gpu_conv *k = &d->e[i].c;

		if (k->filt == c->filt && d->e[i].nb == nb && d->e[i].h == h && d->e[i].w == w && k->stride == c->stride &&
		    k->bias == c->bias && k->mul == c->mul && k->add == c->add && k->k == c->k &&
		    k->cin == c->cin && k->cout == c->cout && k->depthwise == c->depthwise &&
		    k->pad == c->pad && k->act == c->act && memcmp(k->pads, c->pads, sizeof(k->pads)) == 0 &&
		    k->groups == c->groups) {
			e = &d->e[i];
			break;
		}
	}
	if (!e && !(e = entry_make(d, nb, c, h, w))) {
		d->failures++;
		return -EIO;
	}
	if (dnnl_memory_set_data_handle(e->src, (void *)in) || dnnl_memory_set_data_handle(e->dst, out))
		return -EIO;
	if (e->to_bf16) {
		dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, e->src}, {DNNL_ARG_TO, e->src16}};

		if (dnnl_primitive_execute(e->to_bf16, d->stream, 2, ra) != dnnl_success)
			return -EIO;
	}
	{
		dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src16 ? e->src16 : e->src}, {DNNL_ARG_WEIGHTS, e->wei},
					   {DNNL_ARG_BIAS, e->bias}, {DNNL_ARG_DST, e->dst}};

		if (dnnl_primitive_execute(e->prim, d->stream, 4, args) != dnnl_success ||
		    dnnl_stream_wait(d->stream) != dnnl_success)
			return -EIO;
	}
	return 0;
}
