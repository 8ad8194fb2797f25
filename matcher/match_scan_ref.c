/*
 * The portable reference kernel: the definition every optimised kernel must equal bit for bit
 * (tests/matcher/test_kernels.c). One fma chain per (query, entry) in dimension order.
 */
#include <math.h>

#include "match_int.h"

void match_scan_ref(const struct match_segv *sv, unsigned d, const float *q, unsigned nq, float alpha,
		    struct match_topk *tk)
{
	const struct match_seg *seg = sv->seg;
	const float *bias = sv->bias->v;

	for (uint32_t b = 0; b < seg->cap / MATCH_LANES; b++) {
		const float *xb = seg->x + (size_t)b * d * MATCH_LANES;

		for (unsigned j = 0; j < nq; j++) {
			const float *qj = q + (size_t)j * d;

			for (unsigned l = 0; l < MATCH_LANES; l++) {
				uint32_t idx = b * MATCH_LANES + l;
				float acc = 0.0f;

				if (isinf(bias[idx]))
					continue; /* removed or padding: never a candidate */
				for (unsigned k = 0; k < d; k++)
					acc = fmaf(qj[k], xb[k * MATCH_LANES + l], acc);
				float key = fmaf(alpha, acc, bias[idx]);

				if (key <= tk[j].worst)
					match_scan_offer(sv, &tk[j], key, idx);
			}
		}
	}
}
