/*
 * One conv layer on the CPU backend, the one place that chooses who runs it: oneDNN
 * (cpu/gpu_dnnl.c) where the caller has a context and oneDNN can run the layer, else the
 * reference kernels (gpu_layers_ref.c). Kept out of both so that the reference calls nothing it
 * is checked against.
 */
#include "gpu_int.h"

void gpu_conv_run(struct gpu_dnnl *d, int nb, const struct gpu_conv *c, const float *in, int h,
		  int w, float *out, int *oh, int *ow)
{
	int pad[4];

	gpu_conv_out_dims(c, h, w, oh, ow, pad);
	if (d && gpu_dnnl_conv(d, nb, c, in, h, w, out) == 0)
		return;
	gpu_conv_ref(nb, c, in, h, w, out, oh, ow);
}
