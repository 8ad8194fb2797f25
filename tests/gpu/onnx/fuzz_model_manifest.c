/*
 * Fuzz target: an ONNX model folder's vigil-model.json (gpu_model_manifest_parse): every key
 * checked, one line on any fault, paths bounded. Input: the manifest's bytes.
 */
#include <stdint.h>
#include <string.h>

#include "../../../gpu/gpu_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gpu_model_manifest m;
	char err[256];

	if (gpu_model_manifest_parse((const char *)data, size, "/models/x", &m, err, sizeof(err)) == 0) {
		/* what a successful parse promises */
		if (strlen(m.info.id) < 1 || strlen(m.info.id) > 31 || strlen(m.info.digest) != 64 ||
		    m.info.descriptor_dim < 1 || m.info.descriptor_dim > GPU_DESCRIPTOR_MAX || m.input.width < 8 ||
		    m.input.width != m.input.height || !memchr(m.onnx_path, 0, sizeof(m.onnx_path)))
			__builtin_trap();
	}
	return 0;
}
