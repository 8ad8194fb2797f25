/*
 * Fuzz target: the ONNX importer (gpu_onnx_load) on arbitrary bytes as a model for an 8 x 8
 * input; where a net imports and is small, one forward pass on the reference kernels, so that a
 * plan the checks let through is also run (every slot and index in bounds).
 * Input: the .onnx file's bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../gpu/onnx/gpu_onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct gpu_onnx_input in = {.width = 8, .height = 8, .mean = {0, 0, 0}, .std = {1, 1, 1}};
	static float rgb[8 * 8 * 3], out[GPU_DESCRIPTOR_MAX];
	struct gpu_onnx_net *net = NULL;
	size_t floats = 0;
	char err[256];

	if (gpu_onnx_load(&net, data, size, "fuzz.onnx", &in, err, sizeof(err)) != 0)
		return 0;
	for (int s = 0; s < net->nslot; s++)
		floats += net->slot_floats[s];
	if (floats < (1u << 20) && net->nop < 64)   /* keep each input fast */
		gpu_onnx_forward(net, NULL, rgb, 1, out);
	gpu_onnx_free(&net);
	return 0;
}
