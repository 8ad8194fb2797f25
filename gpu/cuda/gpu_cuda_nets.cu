/*
 * The face nets on CUDA, pass by pass (gpu_cuda.h: gpu_cuda_nets_*): host memory in and out, one
 * net at a time, for the CPU pipeline's offload hook (gpu_cuda_nets_attach) and the checks. The
 * executors, cuDNN and the graphs are gpu_cuda_exec.cuh's; the whole pipeline on the device is
 * gpu_cuda_faces.cu.
 *
 * After every pass the net's activations, inputs and outputs are zeroed (DESIGN.md invariant 1),
 * on the device and in the pinned staging buffer.
 */
#include <new>

#include "gpu_cuda_engine.cuh"
#include "gpu_cuda_exec.cuh"

extern "C" {
#include "gpu_cuda.h"
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

template <class E> struct vgc_nets final : gpu_cuda_nets {
	E e;

	int build(const struct gpu_model *m, int max_nb)
	{
		max_batch = max_nb;
		ssd_batch = max_nb < GPU_CUDA_NETS_SSD_BATCH ? max_nb : GPU_CUDA_NETS_SSD_BATCH;
		return e.build(m, ssd_batch, max_nb, mode);
	}
	/* one pass: inputs in, forward, outputs out, then everything the pass touched scrubbed */
	template <class FWD> int pass(int net, float *in_buf, const float *in, size_t in_n, int nb, FWD fwd,
				      float *o1, const float *d1, size_t n1, float *o2, const float *d2, size_t n2)
	{
		int rc;

		if (nb < 1 || nb > max_batch || !in || !o1)
			return -EINVAL;
		rc = e.x.to_input(in_buf, in, in_n);
		if (rc == 0) {
			fwd();
			rc = e.x.failed();
		}
		if (rc == 0)
			rc = e.x.from_output(o1, d1, n1);
		if (rc == 0 && o2)
			rc = e.x.from_output(o2, d2, n2);
		{
			int sc = e.scrub(net, nb);

			e.x.scrub_stage(in_n > n1 + n2 ? in_n : n1 + n2);
			rc = rc ? rc : sc;
		}
		return rc;
	}
	int ssd(const float *in, int nb, float *boxes, float *scores) override
	{
		if (nb > ssd_batch)
			return -EINVAL;
		return pass(VGC_NET_SSD, e.s.in, in, (size_t)nb * 512 * 512 * 3, nb, [&]() { e.ssd_forward(nb); }, boxes,
			    e.s.boxes, (size_t)nb * GPU_SSD_ANCHORS * 4, scores, e.s.scores, (size_t)nb * GPU_SSD_ANCHORS);
	}
	int lm(const float *in, int nb, float *out) override
	{
		return pass(VGC_NET_LM, e.l.in, in, (size_t)nb * 112 * 112 * 3, nb, [&]() { e.lm_forward(nb); }, out,
			    e.l.out, (size_t)nb * 136, (float *)NULL, (const float *)NULL, 0);
	}
	int rec(const float *in, int nb, float *out) override
	{
		return pass(VGC_NET_REC, e.r.in, in, (size_t)nb * 150 * 150 * 3, nb, [&]() { e.rec_forward(nb); }, out,
			    e.r.out, (size_t)nb * 128, (float *)NULL, (const float *)NULL, 0);
	}
	int fallbacks() override { return e.fallbacks(); }
};

/* X of the nets: a GPU's on its own stream, with a pinned stage of STAGE floats (the fp16 mode keeps
 * the detector and the landmarks in fp32 cuDNN: vgc_engine), or nothing to do on the host. */
template <class T> static int vgc_nets_x_init(vgc_host<T> &, int, int, size_t) { return 0; }
template <class T> static int vgc_nets_x_init(vgc_dev<T> &x, int device, int mode, size_t stage)
{
	return x.init(device, mode == GPU_CUDA_FP16 ? GPU_CUDA_FP32 : mode, stage, 1) ? x.failed() : 0;
}

template <class E> static int vgc_nets_make(gpu_cuda_nets **out, const struct gpu_model *m, int device, int mode,
					    int max_batch, size_t stage)
{
	vgc_nets<E> *n = new (std::nothrow) vgc_nets<E>();
	int rc;

	if (!n)
		return -ENOMEM;
	n->device = device;
	n->mode = mode;
	rc = vgc_nets_x_init(n->e.x, device, mode, stage);
	if (rc == 0)
		rc = n->build(m, max_batch);
	if (rc) {
		delete n;
		return rc;
	}
	*out = n;
	return 0;
}

extern "C" int gpu_cuda_nets_create(struct gpu_cuda_nets **out, const struct gpu_model *model, int device,
				    int mode, int max_batch, char *err, size_t errlen)
{
	int rc;

	if (!out || !model || max_batch < 1 || max_batch > GPU_CUDA_NETS_MAX_BATCH ||
	    (mode != GPU_CUDA_EXACT && mode != GPU_CUDA_FP32 && mode != GPU_CUDA_FP16)) {
		snprintf(err, errlen, "cuda nets: bad arguments");
		return -EINVAL;
	}
	if (!gpu_model_rec(model)) {   /* an ONNX model folder's descriptor net: CPU only for now */
		snprintf(err, errlen, "cuda nets: the model's descriptor net is an ONNX import, which runs on the CPU only");
		return -ENOTSUP;
	}
	if (device < 0) {
		rc = mode == GPU_CUDA_FP16
			     ? vgc_nets_make<vgc_engine<vgc_host<float>, vgc_host<__half>>>(out, model, device, mode, max_batch, 0)
			     : vgc_nets_make<vgc_engine<vgc_host<float>>>(out, model, device, mode, max_batch, 0);
	} else {
		int count = gpu_cuda_device_count();
		int sb = max_batch < GPU_CUDA_NETS_SSD_BATCH ? max_batch : GPU_CUDA_NETS_SSD_BATCH;
		size_t stage = (size_t)sb * 512 * 512 * 3 > (size_t)max_batch * 150 * 150 * 3
				       ? (size_t)sb * 512 * 512 * 3 : (size_t)max_batch * 150 * 150 * 3;

		if (count <= 0 || device >= count) {
			snprintf(err, errlen, "cuda nets: no CUDA device %d (%d found)", device, count > 0 ? count : 0);
			return -ENODEV;
		}
		rc = mode == GPU_CUDA_FP16
			     ? vgc_nets_make<vgc_engine<vgc_dev<float>, vgc_dev<__half>>>(out, model, device, mode, max_batch, stage)
			     : vgc_nets_make<vgc_engine<vgc_dev<float>>>(out, model, device, mode, max_batch, stage);
	}
	if (rc)
		snprintf(err, errlen, "cuda nets: %s", rc == -ENOMEM ? "out of memory" : gpu_cuda_last_error());
	return rc;
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
