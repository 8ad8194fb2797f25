/*
 * The three face nets built on the executors of gpu_cuda_exec.cuh (vgc_engine): what the nets'
 * offload (gpu_cuda_nets.cu) and the whole pipeline (gpu_cuda_faces.cu) instantiate, on the CUDA
 * executor or the host emulation. Apart from the executors so that each header is one thing.
 */
#ifndef GPU_CUDA_ENGINE_CUH
#define GPU_CUDA_ENGINE_CUH

#include <type_traits>

#include "gpu_cuda_exec.cuh"
#include "gpu_cuda_nets.cuh"

/* ==== the three nets on their executors ========================================================= */

/*
 * The nets built on executors X (the detector and the landmarks) and XR (the descriptor net; X
 * itself unless its storage differs), and their passes: BUILD makes every buffer; a pass runs at
 * the bucketed batch size (vgc_bucket) as a graph where the executor has them. Inputs are the
 * nets' `in` buffers (raw 0..255 pixels), outputs their `boxes`/`scores`/`out`; scrub(net, nb)
 * clears a pass.
 *
 * Why two: the fast mode keeps fp16 for the descriptor net only. In fp16 the detector's boxes and
 * the landmarks move by a fraction of a pixel, enough now and then to move a floored crop by one,
 * which moves a descriptor by up to 0.4 (face-nets.md §10); in the descriptor net fp16 moves
 * descriptors by ~1e-3 (tests/gpu/cuda/test_cuda_nets_host.c). XR shares X's stream and device.
 */
template <class X, class XR = X> struct vgc_engine {
	typedef typename X::T T;     /* the detector's and the landmarks' activations */
	typedef typename XR::T TR;   /* the descriptor net's */
	X x;
	XR xr_own;                   /* the descriptor net's executor where it is not X */
	XR *xr = NULL;
	vgc_ssd<T> s;
	vgc_lm<T> l;
	vgc_rec<TR> r;
	int ssd_batch = 1, crop_batch = 1;

	static constexpr bool split = !std::is_same<X, XR>::value;

	/* X is initialised; XR, where it is another, goes on X's stream in mode REC_MODE */
	int build(const struct gpu_model *m, int ssd_nb, int crop_nb, int rec_mode)
	{
		if constexpr (split) {
			xr = &xr_own;
			if (xr_own.share(x, rec_mode))
				return xr_own.failed() ? xr_own.failed() : -EIO;
		} else {
			(void)rec_mode;
			xr = &x;
		}
		ssd_batch = ssd_nb;
		crop_batch = crop_nb;
		x.building_nb = ssd_nb;
		x.owner = VGC_NET_SSD;
		vgc_ssd_build(x, s, gpu_model_ssd(m), ssd_nb);
		x.building_nb = crop_nb;
		x.owner = VGC_NET_LM;
		vgc_lm_build(x, l, gpu_model_lm(m), crop_nb);
		xr->building_nb = crop_nb;
		xr->owner = VGC_NET_REC;
		vgc_rec_build(*xr, r, gpu_model_rec(m), crop_nb);
		x.owner = xr->owner = 0;
		x.building_nb = xr->building_nb = 1;
		if (failed())
			return failed();
		if constexpr (split) {
			if (xr_own.finish())
				return xr_own.failed();
		}
		return x.finish();
	}
	/* the batch a pass of NB runs at: SSD at most ssd_batch, crops at most crop_batch */
	int ssd_nb(int nb) const { return vgc_bucket(nb, ssd_batch); }
	int crop_nb(int nb) const { return vgc_bucket(nb, crop_batch); }
	void ssd_forward(int nb)
	{
		int b = ssd_nb(nb);

		x.graph(VGC_NET_SSD, b, [&]() { vgc_ssd_forward(x, s, b); });
	}
	void lm_forward(int nb)
	{
		int b = crop_nb(nb);

		x.graph(VGC_NET_LM, b, [&]() { vgc_lm_forward(x, l, b); });
	}
	void rec_forward(int nb)
	{
		int b = crop_nb(nb);

		xr->graph(VGC_NET_REC, b, [&]() { vgc_rec_forward(*xr, r, b); });
	}
	int scrub(int net, int nb)
	{
		if (net == VGC_NET_REC)
			return xr->scrub(net, crop_nb(nb));
		return x.scrub(net, net == VGC_NET_SSD ? ssd_nb(nb) : crop_nb(nb));
	}
	int failed() const { return x.failed() ? x.failed() : xr->failed(); }
	int fallbacks() const { return x.fallbacks() + (split ? xr_own.fallbacks() : 0); }
	uint64_t residue() { return x.residue() + (split ? xr_own.residue() : 0); }
	unsigned long graph_launches() const { return x.graph_launches + (split ? xr_own.graph_launches : 0); }
	unsigned long graph_failures() const { return x.graph_failures + (split ? xr_own.graph_failures : 0); }
	uint64_t bytes() const
	{
		uint64_t b = 0;

		for (int i = 0; i < x.nmem; i++)
			b += x.mem[i].len;
		for (int i = 0; split && i < xr_own.nmem; i++)
			b += xr_own.mem[i].len;
		return b;
	}
};

#endif /* GPU_CUDA_ENGINE_CUH */
