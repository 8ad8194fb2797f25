/*
 * The face nets on CUDA (gpu_cuda.h: gpu_cuda_nets_*), and the same layer sequence emulated on
 * the host for checking where there is no GPU.
 *
 * Two executors run gpu_cuda_nets.cuh's forward passes:
 * - vgc_dev: device memory, one stream, the element kernels of gpu_cuda_kern.cuh launched as
 *   grid-stride kernels, and, in the cuDNN modes, cuDNN's convolutions (NHWC, scale layers folded
 *   into the filters, conv+bias+activation and the residual add fused by
 *   cudnnConvolutionBiasActivationForward where cuDNN offers it, else cudnnConvolutionForward
 *   and our epilogue). A layer cuDNN refuses runs on the direct kernel and is counted.
 * - vgc_host: the same kernels called in a loop on the CPU, reading the CPU net's own weights.
 *
 * Everything is allocated when the nets are made; a forward pass allocates nothing. After every
 * pass the activations, inputs and outputs are zeroed (DESIGN.md invariant 1), on the device and
 * in the pinned staging buffers.
 */
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>

#include <cuda_runtime.h>
#ifdef VG_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "gpu_cuda_nets.cuh"

extern "C" {
#include "gpu_cuda.h"
}

int gpu_cuda_error(cudaError_t e, const char *what);   /* gpu_cuda_device.cu */

#define VGC_MAX_ALLOCS 256
#define VGC_WORKSPACE (64u << 20)   /* cuDNN's workspace: algorithms needing more are not used */

/* ==== host emulation =========================================================================== */

template <class TT> struct vgc_host {
	typedef TT T;
	void *bio[VGC_MAX_ALLOCS];
	size_t bio_len[VGC_MAX_ALLOCS];
	int bio_owner[VGC_MAX_ALLOCS];
	int nbio = 0, fail = 0, owner = 0;

	void *alloc(size_t bytes)
	{
		void *p = nbio < VGC_MAX_ALLOCS ? gpu_bio_alloc(bytes) : NULL;

		if (!p) {
			fail = -ENOMEM;
			return NULL;
		}
		bio[nbio] = p;
		bio_owner[nbio] = owner;
		bio_len[nbio++] = bytes;
		return p;
	}
	T *act(size_t n) { return (T *)alloc(n * sizeof(T)); }
	float *f32(size_t n) { return (float *)alloc(n * sizeof(float)); }
	/* the CPU net's weights serve as they are */
	const float *put(const float *host, size_t n) { return (void)n, host; }
	void layer(struct vgc_layer *L) { (void)L; }
	template <class F> void each(size_t n, const F &f)
	{
		for (size_t i = 0; i < n; i++)
			f(i);
	}
	void conv(struct vgc_layer *L, int nb, const T *in, T *out, const T *res)
	{
		vgc_conv_direct(*this, L, nb, in, out, res);
	}
	int building_nb = 1;   /* unused: nothing to size by batch */
	int finish() { return 0; }
	int to_input(float *dst, const float *src, size_t n) { return memcpy(dst, src, n * sizeof(float)), 0; }
	int from_output(float *dst, const float *src, size_t n) { return memcpy(dst, src, n * sizeof(float)), 0; }
	int scrub(int who)
	{
		for (int i = 0; i < nbio; i++)
			if (bio_owner[i] == who)
				memset(bio[i], 0, bio_len[i]);
		return 0;
	}
	int failed() const { return fail; }
	int fallbacks() const { return 0; }
	~vgc_host()
	{
		for (int i = 0; i < nbio; i++)
			gpu_bio_free(bio[i]);
	}
};

/* ==== the CUDA executor ======================================================================== */

template <class F> __global__ void vgc_each_kernel(size_t n, F f)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		f(i);
}

/* F(i) for i in [0, N) on the device, grid-stride, on stream ST. */
template <class F> static cudaError_t vgc_launch(size_t n, const F &f, cudaStream_t st)
{
	size_t blocks = (n + 255) / 256;

	if (n == 0)
		return cudaSuccess;
	vgc_each_kernel<<<(unsigned)(blocks > 8192 ? 8192 : blocks), 256, 0, st>>>(n, f);
	return cudaGetLastError();
}

/* cuDNN's state for one layer */
struct vgc_dnn {
	int ok, fused, nb;          /* nb: the batch the descriptors are set for (0: none yet) */
	int have_algo;              /* ALGO chosen (once, at build, for the largest batch) */
	int explicit_pad, ph, pw;   /* the padded copy's size, when TF's padding is asymmetric */
	void *kfilt;                /* KRSC, folded, in the storage type */
	float *kbias;               /* (bias * mul + add), fp32 */
#ifdef VG_HAVE_CUDNN
	cudnnTensorDescriptor_t xd, yd, bd;
	cudnnFilterDescriptor_t fd;
	cudnnConvolutionDescriptor_t cd;
	cudnnActivationDescriptor_t ad;
	cudnnConvolutionFwdAlgo_t algo;
	size_t ws;
#endif
};

template <class TT> struct vgc_dev {
	typedef TT T;
	int device = 0, mode = GPU_CUDA_EXACT, fail = 0, nfallback = 0, building_nb = 1;
	int owner = 0;   /* the net whose buffers are being made: a pass scrubs its own net's only */
	cudaStream_t st = NULL;
	void *dmem[VGC_MAX_ALLOCS];
	size_t dlen[VGC_MAX_ALLOCS];
	int dscrub[VGC_MAX_ALLOCS];
	int ndmem = 0;
	struct vgc_dnn dnn[160];
	int ndnn = 0;
	size_t pad_elems = 0;   /* the largest explicitly padded input, whole batch */
	T *padbuf = NULL;
	void *ws = NULL;
	float *stage = NULL;    /* pinned, for inputs and outputs */
	size_t stage_len = 0;
#ifdef VG_HAVE_CUDNN
	cudnnHandle_t h = NULL;
#endif

	int cuda(cudaError_t e, const char *what)
	{
		if (e != cudaSuccess && !fail)
			fail = gpu_cuda_error(e, what);
		return e == cudaSuccess ? 0 : -EIO;
	}

	/* SCRUB: zeroed after every pass of the owner's net (-1: of every net), or never (weights) */
	void *dalloc(size_t bytes, int scrub)
	{
		void *p = NULL;

		if (fail || ndmem >= VGC_MAX_ALLOCS || cuda(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc"))
			return fail = fail ? fail : -ENOMEM, (void *)NULL;
		cuda(cudaMemset(p, 0, bytes), "cudaMemset");
		dmem[ndmem] = p;
		dlen[ndmem] = bytes;
		dscrub[ndmem++] = scrub ? (scrub < 0 ? -1 : owner) : 0;
		return p;
	}
	T *act(size_t n) { return (T *)dalloc(n * sizeof(T), 1); }
	float *f32(size_t n) { return (float *)dalloc(n * sizeof(float), 1); }
	const float *put(const float *host, size_t n)
	{
		float *p = (float *)dalloc(n * sizeof(float), 0);

		if (p)
			cuda(cudaMemcpy(p, host, n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy weights");
		return p;
	}
	template <class F> void each(size_t n, const F &f)
	{
		if (!fail)
			cuda(vgc_launch(n, f, st), "kernel launch");
	}

	void layer(struct vgc_layer *L);
	int dnn_shape(struct vgc_dnn *d, const struct vgc_layer *L, int nb);
	void conv(struct vgc_layer *L, int nb, const T *in, T *out, const T *res);

	int to_input(float *dst, const float *src, size_t n)
	{
		if (n > stage_len)
			return -EINVAL;
		memcpy(stage, src, n * sizeof(float));
		return cuda(cudaMemcpyAsync(dst, stage, n * sizeof(float), cudaMemcpyHostToDevice, st), "cudaMemcpy in");
	}
	int from_output(float *dst, const float *src, size_t n)
	{
		if (n > stage_len)
			return -EINVAL;
		if (cuda(cudaMemcpyAsync(stage, src, n * sizeof(float), cudaMemcpyDeviceToHost, st), "cudaMemcpy out") ||
		    cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize"))
			return -EIO;
		memcpy(dst, stage, n * sizeof(float));
		return 0;
	}
	/* zero the net WHO's activations, inputs and outputs on the device, and the staging buffer */
	int scrub(int who)
	{
		for (int i = 0; i < ndmem; i++)
			if (dscrub[i] == who || dscrub[i] == -1)
				cuda(cudaMemsetAsync(dmem[i], 0, dlen[i], st), "cudaMemset scrub");
		cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize");
		memset(stage, 0, stage_len * sizeof(float));
		return fail;
	}
	int failed() const { return fail; }
	int fallbacks() const { return nfallback; }

	int init(int dev, int md, size_t stage_floats)
	{
		if (cuda(cudaSetDevice(dev), "cudaSetDevice") ||
		    cuda(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate") ||
		    cuda(cudaHostAlloc((void **)&stage, stage_floats * sizeof(float), cudaHostAllocDefault), "cudaHostAlloc"))
			return fail;
		device = dev;
		mode = md;
		stage_len = stage_floats;
		/* pinned host memory holds face pixels too: keep it out of core dumps */
		(void)madvise((void *)((uintptr_t)stage & ~(uintptr_t)4095), stage_floats * sizeof(float), MADV_DONTDUMP);
#ifdef VG_HAVE_CUDNN
		if (mode != GPU_CUDA_EXACT) {
			if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS || cudnnSetStream(h, st) != CUDNN_STATUS_SUCCESS) {
				h = NULL;
				mode = GPU_CUDA_EXACT;   /* no cuDNN: the direct kernels serve, counted below */
				nfallback++;
			} else {
				ws = dalloc(VGC_WORKSPACE, 0);
			}
		}
#else
		if (mode != GPU_CUDA_EXACT) {
			mode = GPU_CUDA_EXACT;
			nfallback++;
		}
#endif
		return fail;
	}
	/* after the nets are built: the buffer for explicitly padded inputs */
	int finish()
	{
		if (pad_elems)
			padbuf = (T *)dalloc(pad_elems * sizeof(T), -1);
		return fail;
	}
	~vgc_dev()
	{
		if (st)
			cudaStreamSynchronize(st);
		for (int i = 0; i < ndmem; i++) {
			cudaMemset(dmem[i], 0, dlen[i]);
			cudaFree(dmem[i]);
		}
#ifdef VG_HAVE_CUDNN
		for (int i = 0; i < ndnn; i++) {
			struct vgc_dnn *d = &dnn[i];

			/* every one made, whether or not the layer kept cuDNN */
			if (d->xd)
				cudnnDestroyTensorDescriptor(d->xd);
			if (d->yd)
				cudnnDestroyTensorDescriptor(d->yd);
			if (d->bd)
				cudnnDestroyTensorDescriptor(d->bd);
			if (d->fd)
				cudnnDestroyFilterDescriptor(d->fd);
			if (d->cd)
				cudnnDestroyConvolutionDescriptor(d->cd);
			if (d->ad)
				cudnnDestroyActivationDescriptor(d->ad);
		}
		if (h)
			cudnnDestroy(h);
#endif
		if (stage) {
			memset(stage, 0, stage_len * sizeof(float));
			cudaFreeHost(stage);
		}
		if (st)
			cudaStreamDestroy(st);
	}
};

static inline void vgc_store(float *p, double v) { *p = (float)v; }
static inline void vgc_store(__half *p, double v) { *p = __float2half_rn((float)v); }

/*
 * cuDNN for layer L at its input size: fold the scale into the filter (w' = w * mul, b' = bias *
 * mul + add: face-nets.md §4), lay it out KRSC, make the descriptors. Any refusal leaves L on the
 * direct kernel.
 */
template <class TT> void vgc_dev<TT>::layer(struct vgc_layer *L)
{
#ifdef VG_HAVE_CUDNN
	const struct gpu_conv *c = &L->cpu;
	int k = c->k, cin = c->cin, cout = c->cout, groups = c->depthwise ? cin : 1;
	int cpg = cin / groups;
	size_t nf = (size_t)cout * k * k * cpg;
	struct vgc_dnn *d;
	T *kf;
	float *kb;
	int hh = L->h, ww = L->w, pad_h = 0, pad_w = 0, total_h, total_w;

	if (mode == GPU_CUDA_EXACT || fail || ndnn >= (int)(sizeof(dnn) / sizeof(dnn[0])))
		return;
	d = &dnn[ndnn];
	memset(d, 0, sizeof(*d));
	kf = (T *)malloc(nf * sizeof(T));
	kb = (float *)malloc((size_t)cout * sizeof(float));
	if (!kf || !kb) {
		free(kf);
		free(kb);
		nfallback++;
		return;
	}
	for (int co = 0; co < cout; co++) {
		double m = c->mul ? c->mul[co] : 1.0;

		for (int ky = 0; ky < k; ky++)
			for (int kx = 0; kx < k; kx++)
				for (int ci = 0; ci < cpg; ci++) {
					double wv = c->depthwise ? c->filt[((size_t)ky * k + kx) * cin + co]
								 : c->filt[(((size_t)ky * k + kx) * cin + ci) * cout + co];

					vgc_store(&kf[(((size_t)co * k + ky) * k + kx) * cpg + ci], wv * m);
				}
		kb[co] = (float)((c->bias ? (double)c->bias[co] : 0.0) * m + (c->add ? c->add[co] : 0.0));
	}
	d->kfilt = dalloc(nf * sizeof(T), 0);
	d->kbias = (float *)dalloc((size_t)cout * sizeof(float), 0);
	if (d->kfilt && d->kbias) {
		cuda(cudaMemcpy(d->kfilt, kf, nf * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy filters");
		cuda(cudaMemcpy(d->kbias, kb, (size_t)cout * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy bias");
	}
	free(kf);
	free(kb);
	if (fail)
		return;

	/* TF's padding: symmetric goes to cuDNN, asymmetric ('same' at stride 2 on an even side)
	 * becomes an explicitly padded copy of the input */
	total_h = c->pad == GPU_PAD_SAME ? (L->oh - 1) * c->stride + k - hh : 0;
	total_w = c->pad == GPU_PAD_SAME ? (L->ow - 1) * c->stride + k - ww : 0;
	total_h = total_h > 0 ? total_h : 0;
	total_w = total_w > 0 ? total_w : 0;
	if (total_h != 2 * L->pt || total_w != 2 * L->pl) {
		size_t pe = (size_t)building_nb * (hh + total_h) * (ww + total_w) * cin;

		d->explicit_pad = 1;
		d->ph = hh + total_h;
		d->pw = ww + total_w;
		pad_elems = pe > pad_elems ? pe : pad_elems;
	} else {
		pad_h = L->pt;
		pad_w = L->pl;
	}
	{
		cudnnDataType_t dt = sizeof(T) == 2 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
		int ok = cudnnCreateTensorDescriptor(&d->xd) == CUDNN_STATUS_SUCCESS &&
			 cudnnCreateTensorDescriptor(&d->yd) == CUDNN_STATUS_SUCCESS &&
			 cudnnCreateTensorDescriptor(&d->bd) == CUDNN_STATUS_SUCCESS &&
			 cudnnCreateFilterDescriptor(&d->fd) == CUDNN_STATUS_SUCCESS &&
			 cudnnCreateConvolutionDescriptor(&d->cd) == CUDNN_STATUS_SUCCESS &&
			 cudnnCreateActivationDescriptor(&d->ad) == CUDNN_STATUS_SUCCESS &&
			 cudnnSetFilter4dDescriptor(d->fd, dt, CUDNN_TENSOR_NHWC, cout, cpg, k, k) == CUDNN_STATUS_SUCCESS &&
			 cudnnSetConvolution2dDescriptor(d->cd, pad_h, pad_w, c->stride, c->stride, 1, 1,
							 CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS &&
			 cudnnSetConvolutionGroupCount(d->cd, groups) == CUDNN_STATUS_SUCCESS &&
			 /* fp32 without TF32, so that the fp32 mode is a check of the nets; fp16 on tensor cores */
			 cudnnSetConvolutionMathType(d->cd, sizeof(T) == 2 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH) ==
				 CUDNN_STATUS_SUCCESS &&
			 cudnnSetTensor4dDescriptor(d->bd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, cout, 1, 1) ==
				 CUDNN_STATUS_SUCCESS;
		/* fused where cuDNN has it: in fp32, for a layer with a ReLU to fuse (decided per call:
		 * the residual layers' merge is a ReLU after the add) */
		d->fused = ok && sizeof(T) == 4;
		if (ok)
			ok = cudnnSetActivationDescriptor(d->ad,
							  L->act == VGK_ACT_RELU6 ? CUDNN_ACTIVATION_CLIPPED_RELU
										  : CUDNN_ACTIVATION_RELU,
							  CUDNN_NOT_PROPAGATE_NAN, 6.0) == CUDNN_STATUS_SUCCESS;
		d->ok = ok;
		ndnn++;
		/* the algorithm now, for the largest batch, so that no pass runs cuDNN's heuristics */
		if (ok && dnn_shape(d, L, building_nb) < 0)
			d->ok = ok = 0;
		L->dnn = ok ? d : NULL;
		if (!ok)
			nfallback++;
	}
#else
	(void)L;
#endif
}

/*
 * The descriptors for a batch of NB, with the algorithm chosen once (the heuristics run again
 * only if it cannot take NB within the workspace); 0, or -1 (the direct kernel serves).
 */
template <class TT> int vgc_dev<TT>::dnn_shape(struct vgc_dnn *d, const struct vgc_layer *L, int nb)
{
#ifdef VG_HAVE_CUDNN
	const struct gpu_conv *c = &L->cpu;
	cudnnDataType_t dt = sizeof(T) == 2 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
	int ih = d->explicit_pad ? d->ph : L->h, iw = d->explicit_pad ? d->pw : L->w;
	int n, cc, yh, yw, got = 0;
	cudnnConvolutionFwdAlgoPerf_t perf[8];

	if (d->nb == nb)
		return 0;
	if (cudnnSetTensor4dDescriptor(d->xd, CUDNN_TENSOR_NHWC, dt, nb, c->cin, ih, iw) != CUDNN_STATUS_SUCCESS ||
	    cudnnSetTensor4dDescriptor(d->yd, CUDNN_TENSOR_NHWC, dt, nb, c->cout, L->oh, L->ow) != CUDNN_STATUS_SUCCESS ||
	    cudnnGetConvolution2dForwardOutputDim(d->cd, d->xd, d->fd, &n, &cc, &yh, &yw) != CUDNN_STATUS_SUCCESS ||
	    n != nb || cc != c->cout || yh != L->oh || yw != L->ow)
		return -1;
	if (d->have_algo &&
	    cudnnGetConvolutionForwardWorkspaceSize(h, d->xd, d->fd, d->cd, d->yd, d->algo, &d->ws) == CUDNN_STATUS_SUCCESS &&
	    d->ws <= VGC_WORKSPACE) {
		d->nb = nb;
		return 0;
	}
	if (cudnnGetConvolutionForwardAlgorithm_v7(h, d->xd, d->fd, d->cd, d->yd, 8, &got, perf) != CUDNN_STATUS_SUCCESS)
		return -1;
	for (int i = 0; i < got; i++) {
		if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > VGC_WORKSPACE)
			continue;
		/* the fused call takes IMPLICIT_PRECOMP_GEMM for an identity activation only; the
		 * activations fused here are ReLUs, which take any algorithm */
		d->algo = perf[i].algo;
		d->ws = perf[i].memory;
		d->have_algo = 1;
		d->nb = nb;
		return 0;
	}
	return -1;
#else
	(void)d, (void)L, (void)nb;
	return -1;
#endif
}

template <class TT> void vgc_dev<TT>::conv(struct vgc_layer *L, int nb, const T *in, T *out, const T *res)
{
#ifdef VG_HAVE_CUDNN
	struct vgc_dnn *d = L->dnn;

	if (d && d->ok && !fail && dnn_shape(d, L, nb) == 0) {
		const float one = 1.0f, zero = 0.0f;
		const void *src = in;
		cudnnStatus_t s;
		int act = res ? VGK_ACT_RELU : L->act;

		if (d->explicit_pad) {
			each((size_t)nb * d->ph * d->pw * L->cpu.cin,
			     vgk_pad<T>{.in = in, .out = padbuf, .h = L->h, .w = L->w, .c = L->cpu.cin, .pt = L->pt,
					.pl = L->pl, .ph = d->ph, .pw = d->pw});
			src = padbuf;
		}
		if (d->fused && act != VGK_ACT_NONE) {
			/* y = act(conv(x) + alpha2 * z + bias): z is the residual, or y itself with alpha2 0 */
			s = cudnnConvolutionBiasActivationForward(h, &one, d->xd, src, d->fd, d->kfilt, d->cd, d->algo,
								  ws, d->ws, res ? &one : &zero, d->yd,
								  res ? (const void *)res : (const void *)out, d->bd,
								  d->kbias, d->ad, d->yd, out);
			if (s == CUDNN_STATUS_SUCCESS)
				return;
			d->fused = 0;   /* this layer and batch refused fusion: unfused from now on */
			nfallback++;
		}
		s = cudnnConvolutionForward(h, &one, d->xd, src, d->fd, d->kfilt, d->cd, d->algo, ws, d->ws, &zero,
					    d->yd, out);
		if (s == CUDNN_STATUS_SUCCESS) {
			each((size_t)nb * L->oh * L->ow * L->cpu.cout,
			     vgk_epilogue<T>{.out = out, .bias = d->kbias, .res = res, .cout = L->cpu.cout, .act = L->act});
			return;
		}
		d->ok = 0;   /* cuDNN refused this layer outright: the direct kernel from now on */
		nfallback++;
	}
#endif
	vgc_conv_direct(*this, L, nb, in, out, res);
}

/* ==== the nets behind the C API ================================================================ */

struct gpu_cuda_nets {
	int max_batch, ssd_batch, device, mode;
	virtual ~gpu_cuda_nets() {}
	virtual int ssd(const float *in, int nb, float *boxes, float *scores) = 0;
	virtual int lm(const float *in, int nb, float *out) = 0;
	virtual int rec(const float *in, int nb, float *out) = 0;
	virtual int fallbacks() = 0;
};

template <class X> struct vgc_nets final : gpu_cuda_nets {
	typedef typename X::T T;
	X x;
	vgc_ssd<T> s;
	vgc_lm<T> l;
	vgc_rec<T> r;

	int build(const struct gpu_model *m, int max_nb)
	{
		max_batch = max_nb;
		ssd_batch = max_nb < GPU_CUDA_NETS_SSD_BATCH ? max_nb : GPU_CUDA_NETS_SSD_BATCH;
		x.building_nb = ssd_batch;
		x.owner = 1;
		vgc_ssd_build(x, s, gpu_model_ssd(m), ssd_batch);
		x.building_nb = max_nb;
		x.owner = 2;
		vgc_lm_build(x, l, gpu_model_lm(m), max_nb);
		x.owner = 3;
		vgc_rec_build(x, r, gpu_model_rec(m), max_nb);
		x.owner = 0;
		return x.failed() ? x.failed() : x.finish();
	}
	/* one pass: inputs in, forward, outputs out, then everything scrubbed */
	template <class N, class FWD> int pass(int who, N &net, const float *in, size_t in_n, int nb, FWD fwd, float *o1,
					       const float *d1, size_t n1, float *o2, const float *d2, size_t n2)
	{
		int rc;

		if (nb < 1 || nb > max_batch || !in || !o1)
			return -EINVAL;
		rc = x.to_input(net.in, in, in_n);
		if (rc == 0) {
			fwd(x, net, nb);
			rc = x.failed();
		}
		if (rc == 0)
			rc = x.from_output(o1, d1, n1);
		if (rc == 0 && o2)
			rc = x.from_output(o2, d2, n2);
		{
			int sc = x.scrub(who);

			rc = rc ? rc : sc;
		}
		return rc;
	}
	int ssd(const float *in, int nb, float *boxes, float *scores) override
	{
		if (nb > ssd_batch)
			return -EINVAL;
		return pass(1, s, in, (size_t)nb * 512 * 512 * 3, nb, vgc_ssd_forward<X>, boxes, s.boxes,
			    (size_t)nb * GPU_SSD_ANCHORS * 4, scores, s.scores, (size_t)nb * GPU_SSD_ANCHORS);
	}
	int lm(const float *in, int nb, float *out) override
	{
		return pass(2, l, in, (size_t)nb * 112 * 112 * 3, nb, vgc_lm_forward<X>, out, l.out, (size_t)nb * 136,
			    (float *)NULL, (const float *)NULL, 0);
	}
	int rec(const float *in, int nb, float *out) override
	{
		return pass(3, r, in, (size_t)nb * 150 * 150 * 3, nb, vgc_rec_forward<X>, out, r.out, (size_t)nb * 128,
			    (float *)NULL, (const float *)NULL, 0);
	}
	int fallbacks() override { return x.fallbacks(); }
};

extern "C" int gpu_cuda_nets_create(struct gpu_cuda_nets **out, const struct gpu_model *model, int device,
				    int mode, int max_batch, char *err, size_t errlen)
{
	gpu_cuda_nets *n = NULL;
	int rc;

	if (!out || !model || max_batch < 1 || max_batch > GPU_CUDA_NETS_MAX_BATCH ||
	    (mode != GPU_CUDA_EXACT && mode != GPU_CUDA_FP32 && mode != GPU_CUDA_FP16)) {
		snprintf(err, errlen, "cuda nets: bad arguments");
		return -EINVAL;
	}
	if (device < 0) {
		if (mode == GPU_CUDA_FP16) {
			vgc_nets<vgc_host<__half>> *h = new (std::nothrow) vgc_nets<vgc_host<__half>>();

			rc = h ? h->build(model, max_batch) : -ENOMEM;
			n = h;
		} else {
			vgc_nets<vgc_host<float>> *h = new (std::nothrow) vgc_nets<vgc_host<float>>();

			rc = h ? h->build(model, max_batch) : -ENOMEM;
			n = h;
		}
	} else {
		int count = gpu_cuda_device_count();
		int sb = max_batch < GPU_CUDA_NETS_SSD_BATCH ? max_batch : GPU_CUDA_NETS_SSD_BATCH;
		size_t stage = (size_t)sb * 512 * 512 * 3 > (size_t)max_batch * 150 * 150 * 3
				       ? (size_t)sb * 512 * 512 * 3 : (size_t)max_batch * 150 * 150 * 3;

		if (count <= 0 || device >= count) {
			snprintf(err, errlen, "cuda nets: no CUDA device %d (%d found)", device, count > 0 ? count : 0);
			return -ENODEV;
		}
		if (mode == GPU_CUDA_FP16) {
			vgc_nets<vgc_dev<__half>> *d = new (std::nothrow) vgc_nets<vgc_dev<__half>>();

			rc = !d ? -ENOMEM : d->x.init(device, mode, stage) ? d->x.failed() : d->build(model, max_batch);
			n = d;
		} else {
			vgc_nets<vgc_dev<float>> *d = new (std::nothrow) vgc_nets<vgc_dev<float>>();

			rc = !d ? -ENOMEM : d->x.init(device, mode, stage) ? d->x.failed() : d->build(model, max_batch);
			n = d;
		}
	}
	if (rc) {
		snprintf(err, errlen, "cuda nets: %s", rc == -ENOMEM ? "out of memory" : gpu_cuda_last_error());
		delete n;
		return rc;
	}
	n->device = device;
	n->mode = mode;
	*out = n;
	return 0;
}

extern "C" void gpu_cuda_nets_destroy(struct gpu_cuda_nets **n)
{
	if (!n || !*n)
		return;
	delete *n;
	*n = NULL;
}

extern "C" int gpu_cuda_nets_ssd(struct gpu_cuda_nets *n, const float *in512, int nb, float *boxes, float *scores)
{
	return n ? n->ssd(in512, nb, boxes, scores) : -EINVAL;
}

extern "C" int gpu_cuda_nets_lm(struct gpu_cuda_nets *n, const float *in112, int nb, float *out136)
{
	return n ? n->lm(in112, nb, out136) : -EINVAL;
}

extern "C" int gpu_cuda_nets_rec(struct gpu_cuda_nets *n, const float *in150, int nb, float *out128)
{
	return n ? n->rec(in150, nb, out128) : -EINVAL;
}

extern "C" int gpu_cuda_nets_fallbacks(const struct gpu_cuda_nets *n)
{
	return n ? const_cast<gpu_cuda_nets *>(n)->fallbacks() : 0;
}

static int off_ssd(void *ctx, const float *in512, float *boxes, float *scores)
{
	return gpu_cuda_nets_ssd((struct gpu_cuda_nets *)ctx, in512, 1, boxes, scores);
}

static int off_lm(void *ctx, const float *in112, float *out136)
{
	return gpu_cuda_nets_lm((struct gpu_cuda_nets *)ctx, in112, 1, out136);
}

static int off_rec(void *ctx, const float *in150, int nb, float *out128)
{
	return gpu_cuda_nets_rec((struct gpu_cuda_nets *)ctx, in150, nb, out128);
}

extern "C" void gpu_cuda_nets_attach(struct gpu_cuda_nets *n, struct gpu_model *model, unsigned passes)
{
	struct gpu_offload o;

	memset(&o, 0, sizeof(o));
	o.ctx = n;
	o.ssd = passes & GPU_CUDA_PASS_SSD ? off_ssd : NULL;
	o.lm = passes & GPU_CUDA_PASS_LM ? off_lm : NULL;
	o.rec = passes & GPU_CUDA_PASS_REC ? off_rec : NULL;
	gpu_model_set_offload(model, n && passes ? &o : NULL);
}

/* ==== preprocessing from decoded frames ======================================================== */

extern "C" int gpu_cuda_to_batch(int device, const struct gpu_cuda_frame *f, int x, int y, int w, int h, int size,
				 int center, float *out)
{
	size_t n = (size_t)size * size * 3;

	if (!f || !out || size < 1 || size > 1024 || w < 1 || h < 1 || x < 0 || y < 0 || x + w > f->width ||
	    y + h > f->height || f->format < GPU_CUDA_RGB24 || f->format > GPU_CUDA_NV12 || !f->plane[0] ||
	    (f->format != GPU_CUDA_RGB24 && !f->plane[1]) || (f->format == GPU_CUDA_I420 && !f->plane[2]))
		return -EINVAL;
	const struct vgk_frame fr = {.plane = {f->plane[0], f->plane[1], f->plane[2]},
				     .pitch = {f->pitch[0], f->pitch[1], f->pitch[2]},
				     .fmt = f->format, .w = f->width, .h = f->height};
	const struct vgk_to_batch k = {.f = fr, .out = out, .x0 = x, .y0 = y, .w = w, .h = h, .size = size,
				       .center = center};

	if (device < 0) {
		for (size_t i = 0; i < n; i++)
			k(i);
		return 0;
	}
	cudaError_t e = cudaSetDevice(device);

	if (e == cudaSuccess)
		e = vgc_launch(n, k, 0);
	if (e == cudaSuccess)
		e = cudaDeviceSynchronize();
	if (e != cudaSuccess)
		return gpu_cuda_error(e, "to_batch kernel");
	return 0;
}
