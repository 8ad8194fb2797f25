/*
 * Fuzz target: the face-api manifest parser and weight loader (gpu_weights_parse), then the
 * nets' name-and-shape resolution on whatever parsed. Input: manifest JSON, a NUL byte, then
 * the .bin bytes.
 */
#include <stdint.h>
#include <string.h>

#include "../../gpu/gpu_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t jlen = nul ? (size_t)(nul - data) : size;
	const uint8_t *bin = nul ? nul + 1 : data + size;
	size_t blen = nul ? size - jlen - 1 : 0;
	struct gpu_weights *w = NULL;
	struct gpu_lm *lm = NULL;
	char err[256];

	if (gpu_weights_parse(&w, (const char *)data, jlen, bin, blen, err, sizeof(err)) == 0) {
		for (int i = 0; i < w->n; i++) {
			const struct gpu_tensor *t = &w->t[i];
			volatile float sink = 0;

			if (t->data && t->count)
				sink = t->data[t->count - 1] + t->data[0];   /* every tensor in bounds */
			(void)sink;
			gpu_weights_get(w, t->name, t->ndim, t->shape, err, sizeof(err));
		}
		if (gpu_lm_create(&lm, w, err, sizeof(err)) == 0)
			gpu_lm_destroy(&lm);
		gpu_weights_close(&w);
	}
	return 0;
}
