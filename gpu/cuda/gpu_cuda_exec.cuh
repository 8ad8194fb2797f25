/*
 * The two executors the face nets and the face pipeline run over (gpu_cuda_nets.cuh,
 * gpu_cuda_faces.cuh), so that the same layer sequences and element kernels run on a GPU or, for
 * checking where there is none, on the host:
 * - vgc_dev: device memory, one stream, the element kernels launched as grid-stride kernels;
 *   in the cuDNN modes cuDNN's convolutions (NHWC, scale layers folded into the filters,
 *   conv+bias+activation and the residual add fused by cudnnConvolutionBiasActivationForward
 *   where cuDNN offers it, else cudnnConvolutionForward and our epilogue; a layer cuDNN refuses
 *   runs on the direct kernel and is counted); the nets' steady-state passes replayed as CUDA
 *   graphs, one per net and batch size.
 * - vgc_host: the same kernels called in a loop on the CPU, host memory for device memory.
 *
 * An executor provides (X below):
 *   typedef T                         activations' storage type (float or __half)
 *   T *act(size_t n), float *f32(size_t n), void *bytes(size_t n)
 *                                     memory made at build time, owned by the net being built
 *                                     (OWNER) and zeroed after each of its passes
 *   void *keep(size_t n)              memory made at build time that only an explicit zero() clears
 *   const float *put(const float *host, size_t n)   weights, copied into X's memory
 *   template <class F> void each(size_t n, const F &f)   f(i) for i in [0, n), in stream order
 *   void conv(struct vgc_layer *L, int nb, const T *in, T *out, const T *res)
 *   template <class F> void graph(int net, int nb, const F &f)   f(), replayed as a graph after
 *                                     the first run at that batch size (device), or just f()
 *   void zero(void *p, size_t n), copy(void *dst, const void *src, size_t n)   in stream order
 *   int upload(void *dst, const void *host, size_t n), download(void *host, const void *src, size_t n)
 *   int scrub(int owner, int nb)      zero that net's buffers for a pass of NB (their NB share)
 *   int failed()                      nonzero once a step has failed (then results are void)
 *
 * Everything is allocated when the nets are built; a pass allocates nothing.
 */
#ifndef GPU_CUDA_EXEC_CUH
#define GPU_CUDA_EXEC_CUH

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

#include <cuda_runtime.h>
#include "vg_config.h"
#ifdef HAVE_CUDNN
#include <cudnn.h>
#endif

#include "gpu_cuda_nets.cuh"

extern "C" {
#include "gpu_cuda.h"
}

int gpu_cuda_error(cudaError_t e, const char *what);   /* gpu_cuda_device.cu */

#define VGC_MAX_ALLOCS 320
#define VGC_WORKSPACE (64u << 20)   /* cuDNN's workspace: algorithms needing more are not used */
#define VGC_GRAPHS_PER_NET 16       /* batch sizes a net keeps a graph for (powers of two) */

/* The nets, as owners of scratch memory (0: weights, never scrubbed; -1: every pass's). */
enum { VGC_NET_SSD = 1, VGC_NET_LM = 2, VGC_NET_REC = 3, VGC_NET_PIPE = 4, VGC_NETS = 5 };

/* One allocation of an executor: what scrub() zeroes of it for a pass of NB. */
struct vgc_mem {
	void *p;
	size_t len;
	size_t per_nb;   /* bytes per batch element (len / the batch it was made for); 0: all of it */
	int owner;       /* a VGC_NET_*, -1 (every net's pass) or 0 (never: weights, explicit zero()) */
};

/* Record P in M (N used of VGC_MAX_ALLOCS) for OWNER, made for batch BUILDING_NB. */
static inline int vgc_mem_note(struct vgc_mem *m, int *n, void *p, size_t bytes, int owner, int building_nb)
{
	if (*n >= VGC_MAX_ALLOCS)
		return -ENOMEM;
	m[*n].p = p;
	m[*n].len = bytes;
	m[*n].owner = owner;
	m[*n].per_nb = owner > 0 && building_nb > 1 && bytes % (size_t)building_nb == 0 ? bytes / building_nb : 0;
	(*n)++;
	return 0;
}

/* The bytes of M that a pass of NB used (its NB share when it is laid out per batch element). */
static inline size_t vgc_mem_used(const struct vgc_mem *m, int nb)
{
	size_t u = m->per_nb ? m->per_nb * (size_t)nb : m->len;

	return u < m->len ? u : m->len;
}

/* The batch size a pass of NB runs at: the next power of two (at most MAX), so that a few CUDA
 * graphs serve every batch. The extra slots hold zeros (inputs are scrubbed after every pass). */
static inline int vgc_bucket(int nb, int max)
{
	int b = 1;

	while (b < nb)
		b <<= 1;
	return b < max ? b : max;
}

/* ==== host emulation =========================================================================== */

template <class TT> struct vgc_host {
	typedef TT T;
	struct vgc_mem mem[VGC_MAX_ALLOCS];
	int nmem = 0, fail = 0, owner = 0, building_nb = 1;
	unsigned long graph_launches = 0, graph_failures = 0;   /* no graphs on the host */

	void *alloc(size_t bytes, int own)
	{
		void *p = gpu_bio_alloc(bytes ? bytes : 1);

		if (!p || vgc_mem_note(mem, &nmem, p, bytes, own, building_nb)) {
			gpu_bio_free(p);
			fail = -ENOMEM;
			return NULL;
		}
		return p;
	}
	T *act(size_t n) { return (T *)alloc(n * sizeof(T), owner); }
	float *f32(size_t n) { return (float *)alloc(n * sizeof(float), owner); }
	void *bytes(size_t n) { return alloc(n, owner); }
	void *keep(size_t n) { return alloc(n, 0); }
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
	template <class F> void graph(int net, int nb, const F &f) { (void)net, (void)nb, f(); }
	int finish() { return 0; }
	void zero(void *p, size_t n) { memset(p, 0, n); }
	void copy(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
	int upload(void *dst, const void *host, size_t n) { return memcpy(dst, host, n), 0; }
	int upload2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t rows)
	{
		for (size_t r = 0; r < rows; r++)
			memcpy((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
		return 0;
	}
	int download(void *host, const void *src, size_t n) { return memcpy(host, src, n), 0; }
	int sync() { return fail; }
	int wait_default_stream() { return 0; }
	/* another executor's (nothing to share in host memory) */
	template <class O> int share(O &other, int md) { return (void)other, (void)md, 0; }
	int to_input(float *dst, const float *src, size_t n) { return memcpy(dst, src, n * sizeof(float)), 0; }
	int from_output(float *dst, const float *src, size_t n) { return memcpy(dst, src, n * sizeof(float)), 0; }
	void scrub_stage(size_t n) { (void)n; }
	int scrub(int who, int nb)
	{
		for (int i = 0; i < nmem; i++)
			if (mem[i].owner == who || (mem[i].owner == -1 && who > 0))
				memset(mem[i].p, 0, vgc_mem_used(&mem[i], nb));
		return 0;
	}
	int failed() const { return fail; }
	int fallbacks() const { return 0; }
	bool device_memory() const { return false; }
	/* the bytes of every scratch buffer (not the weights) that are not zero: a test's look */
	uint64_t residue()
	{
		uint64_t n = 0;

		for (int i = 0; i < nmem; i++)
			for (size_t b = 0; mem[i].owner != 0 && b < mem[i].len; b++)
				n += ((const unsigned char *)mem[i].p)[b] != 0;
		return n;
	}
	~vgc_host()
	{
		for (int i = 0; i < nmem; i++)
			gpu_bio_free(mem[i].p);
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
#ifdef HAVE_CUDNN
	cudnnTensorDescriptor_t xd, yd, bd;
	cudnnFilterDescriptor_t fd;
	cudnnConvolutionDescriptor_t cd;
	cudnnActivationDescriptor_t ad;
	cudnnConvolutionFwdAlgo_t algo;
	size_t ws;
#endif
};

/* A net's graph at one batch size: NB 0 is a free slot; EXEC NULL with NB set: capture failed,
 * that batch size runs eagerly from now on. */
struct vgc_graph {
	int nb;
	cudaGraphExec_t exec;
};

template <class TT> struct vgc_dev {
	typedef TT T;
	int device = 0, mode = GPU_CUDA_EXACT, fail = 0, nfallback = 0, building_nb = 1;
	int owner = 0;   /* the net whose buffers are being made: a pass scrubs its own net's only */
	cudaStream_t st = NULL;
	bool own_stream = false;
	struct vgc_mem mem[VGC_MAX_ALLOCS];
	int nmem = 0;
	struct vgc_dnn dnn[160];
	int ndnn = 0;
	size_t pad_elems = 0;   /* the largest explicitly padded input, whole batch */
	T *padbuf = NULL;
	void *ws = NULL;
	size_t ws_used = 0;     /* the most workspace any layer's algorithm takes: what a scrub zeroes */
	float *stage = NULL;    /* pinned, for the nets API's inputs and outputs */
	size_t stage_len = 0;
	/* CUDA graphs: captured at a net's first pass of each batch size, replayed after */
	int graphs = 0;         /* on */
	int capturing = 0, capture_broken = 0;
	struct vgc_graph graph_tab[VGC_NETS][VGC_GRAPHS_PER_NET];
	unsigned long graph_launches = 0, graph_failures = 0;
	cudaEvent_t legacy = NULL;   /* wait_default_stream()'s */
#ifdef HAVE_CUDNN
	cudnnHandle_t h = NULL;
#endif

	int cuda(cudaError_t e, const char *what)
	{
		if (e == cudaSuccess)
			return 0;
		if (capturing) {   /* a step the capture cannot take: the graph is abandoned, not the nets */
			capture_broken = 1;
			return -EIO;
		}
		if (!fail)
			fail = gpu_cuda_error(e, what);
		return -EIO;
	}

	void *dalloc(size_t bytes, int own)
	{
		void *p = NULL;

		if (fail || nmem >= VGC_MAX_ALLOCS || cuda(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc"))
			return fail = fail ? fail : -ENOMEM, (void *)NULL;
		cuda(cudaMemset(p, 0, bytes), "cudaMemset");
		vgc_mem_note(mem, &nmem, p, bytes, own, building_nb);
		return p;
	}
	T *act(size_t n) { return (T *)dalloc(n * sizeof(T), owner); }
	float *f32(size_t n) { return (float *)dalloc(n * sizeof(float), owner); }
	void *bytes(size_t n) { return dalloc(n, owner); }
	void *keep(size_t n) { return dalloc(n, 0); }
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
	template <class F> void graph(int net, int nb, const F &f);

	void zero(void *p, size_t n)
	{
		if (!fail && n)
			cuda(cudaMemsetAsync(p, 0, n, st), "cudaMemset");
	}
	void copy(void *dst, const void *src, size_t n)
	{
		if (!fail && n)
			cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, st), "cudaMemcpy device");
	}
	/* From pageable host memory: CUDA stages it before returning, so HOST may be reused at once
	 * (small tables, and frames that a decoder left in host memory). */
	int upload(void *dst, const void *host, size_t n)
	{
		return fail ? fail : cuda(cudaMemcpyAsync(dst, host, n, cudaMemcpyHostToDevice, st), "cudaMemcpy up");
	}
	int upload2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t rows)
	{
		return fail ? fail
			    : cuda(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyHostToDevice, st),
				   "cudaMemcpy2D up");
	}
	/* Into pageable host memory: returns once the copy (and all before it on the stream) is done. */
	int download(void *host, const void *src, size_t n)
	{
		if (fail)
			return fail;
		if (cuda(cudaMemcpyAsync(host, src, n, cudaMemcpyDeviceToHost, st), "cudaMemcpy down") ||
		    cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize"))
			return -EIO;
		return 0;
	}
	int sync() { return fail ? fail : cuda(cudaStreamSynchronize(st), "cudaStreamSynchronize"); }
	/*
	 * Order this stream after the legacy default stream: libavcodec 5.1's NVDEC maps a decoded
	 * surface with post-processing queued on stream 0, and hands the frame on before it has run;
	 * our stream is non-blocking, so it must wait for stream 0 before reading such a frame.
	 */
	int wait_default_stream()
	{
		if (fail)
			return fail;
		if (!legacy && cuda(cudaEventCreateWithFlags(&legacy, cudaEventDisableTiming), "cudaEventCreate"))
			return -EIO;
		return cuda(cudaEventRecord(legacy, 0), "cudaEventRecord") ||
		       cuda(cudaStreamWaitEvent(st, legacy, 0), "cudaStreamWaitEvent") ? -EIO : 0;
	}

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
	/* Zero net WHO's activations, inputs and outputs (the share a pass of NB used), the cuDNN
	 * workspace and the padded copies, in stream order: a later pass never sees this one's data. */
	int scrub(int who, int nb)
	{
		for (int i = 0; i < nmem; i++) {
			if (mem[i].owner == who || (mem[i].owner == -1 && who > 0))
				cuda(cudaMemsetAsync(mem[i].p, 0, vgc_mem_used(&mem[i], nb), st), "cudaMemset scrub");
		}
		if (ws && ws_used)
			cuda(cudaMemsetAsync(ws, 0, ws_used, st), "cudaMemset workspace");
		return fail;
	}
	/* the pinned staging buffer, after its data has been copied out */
	void scrub_stage(size_t n) { memset(stage, 0, (n < stage_len ? n : stage_len) * sizeof(float)); }
	int failed() const { return fail; }
	int fallbacks() const { return nfallback; }
	bool device_memory() const { return true; }
	/* the bytes of every scratch buffer and the cuDNN workspace that are not zero, read back a
	 * buffer at a time (a test's look; it allocates); UINT64_MAX if it cannot look */
	uint64_t residue()
	{
		uint64_t n = 0;

		if (sync())
			return UINT64_MAX;
		for (int i = 0; i <= nmem; i++) {
			void *p = i < nmem ? mem[i].p : ws;
			size_t len = i < nmem ? mem[i].len : (ws ? VGC_WORKSPACE : 0);
			unsigned char *h;

			if ((i < nmem && mem[i].owner == 0) || !len)
				continue;
			if (!(h = (unsigned char *)malloc(len)))
				return UINT64_MAX;
			if (cudaMemcpy(h, p, len, cudaMemcpyDeviceToHost) != cudaSuccess) {
				free(h);
				return UINT64_MAX;
			}
			for (size_t b = 0; b < len; b++)
				n += h[b] != 0;
			free(h);
		}
		return n;
	}

	/* On device DEV in mode MD; on STREAM (another executor's, which must outlive this one) or a
	 * stream of its own when NULL. */
	int init(int dev, int md, size_t stage_floats, int use_graphs, cudaStream_t stream = NULL)
	{
		own_stream = stream == NULL;
		st = stream;
		if (cuda(cudaSetDevice(dev), "cudaSetDevice") ||
		    (own_stream && cuda(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate")) ||
		    cuda(cudaHostAlloc((void **)&stage, stage_floats * sizeof(float), cudaHostAllocDefault), "cudaHostAlloc"))
			return fail;
		device = dev;
		mode = md;
		graphs = use_graphs;
		stage_len = stage_floats;
		/* pinned host memory holds face pixels too: keep it out of core dumps */
		(void)madvise((void *)((uintptr_t)stage & ~(uintptr_t)4095), stage_floats * sizeof(float), MADV_DONTDUMP);
#ifdef HAVE_CUDNN
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
	/* on OTHER's device and stream, in mode MD (vgc_engine's descriptor net) */
	template <class O> int share(O &other, int md) { return init(other.device, md, 1, other.graphs, other.st); }
	/* after the nets are built: the buffer for explicitly padded inputs (scrubbed with every pass) */
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
		for (int n = 0; n < VGC_NETS; n++)
			for (int g = 0; g < VGC_GRAPHS_PER_NET; g++)
				if (graph_tab[n][g].exec)
					cudaGraphExecDestroy(graph_tab[n][g].exec);
		for (int i = 0; i < nmem; i++) {
			cudaMemset(mem[i].p, 0, mem[i].len);
			cudaFree(mem[i].p);
		}
#ifdef HAVE_CUDNN
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
		if (legacy)
			cudaEventDestroy(legacy);
		if (st && own_stream)
			cudaStreamDestroy(st);
	}
};

static inline void vgc_store(float *p, double v) { *p = (float)v; }
static inline void vgc_store(__half *p, double v) { *p = __float2half_rn((float)v); }

/*
 * A net's pass of NB on the stream, as a CUDA graph: the first pass at a batch size runs F
 * eagerly (so cuDNN's descriptors and algorithms for that size exist and nothing lazy is left),
 * then captures F into a graph; later passes at that size launch the graph, one call for the
 * whole net instead of ~150 launches. A capture the stream refuses (a step that cannot be
 * captured) leaves that size eager, counted in graph_failures: slower, same results.
 */
template <class TT> template <class F> void vgc_dev<TT>::graph(int net, int nb, const F &f)
{
	struct vgc_graph *slot = NULL;

	if (!graphs || fail || net <= 0 || net >= VGC_NETS) {
		f();
		return;
	}
	for (int i = 0; i < VGC_GRAPHS_PER_NET && !slot; i++)
		if (graph_tab[net][i].nb == nb || graph_tab[net][i].nb == 0)
			slot = &graph_tab[net][i];
	if (slot && slot->nb == nb && slot->exec) {
		if (cuda(cudaGraphLaunch(slot->exec, st), "cudaGraphLaunch") == 0)
			graph_launches++;
		return;
	}
	f();   /* this pass's results */
	if (!slot || slot->nb == nb || fail)
		return;   /* no room, or this size's capture failed before: eager */
	slot->nb = nb;
	{
		cudaGraph_t g = NULL;
		cudaError_t e;

		capture_broken = 0;
		if (cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
			(void)cudaGetLastError();
			graph_failures++;
			return;
		}
		capturing = 1;
		f();
		capturing = 0;
		e = cudaStreamEndCapture(st, &g);
		if (e == cudaSuccess && !capture_broken && g &&
		    cudaGraphInstantiate(&slot->exec, g, 0) == cudaSuccess) {
			cudaGraphDestroy(g);
			return;
		}
		if (g)
			cudaGraphDestroy(g);
		slot->exec = NULL;
		(void)cudaGetLastError();   /* the capture's error is not the stream's */
		graph_failures++;
	}
}

/*
 * cuDNN for layer L at its input size: fold the scale into the filter (w' = w * mul, b' = bias *
 * mul + add: face-nets.md §4), lay it out KRSC, make the descriptors. Any refusal leaves L on the
 * direct kernel.
 */
template <class TT> void vgc_dev<TT>::layer(struct vgc_layer *L)
{
#ifdef HAVE_CUDNN
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
#ifdef HAVE_CUDNN
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
		ws_used = d->ws > ws_used ? d->ws : ws_used;
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
		ws_used = d->ws > ws_used ? d->ws : ws_used;
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
#ifdef HAVE_CUDNN
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
			if (capturing) {   /* refused inside a capture: the graph goes, the layer stays */
				capture_broken = 1;
				return;
			}
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
		if (capturing) {
			capture_broken = 1;
			return;
		}
		d->ok = 0;   /* cuDNN refused this layer outright: the direct kernel from now on */
		nfallback++;
	}
#endif
	vgc_conv_direct(*this, L, nb, in, out, res);
}

#endif /* GPU_CUDA_EXEC_CUH */
