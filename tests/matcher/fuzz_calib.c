/*
 * Fuzz the calibration file's parser (match_calib_parse): whatever parses must answer the rates
 * and thresholds with finite, ordered figures.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "match_calib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct match_calib c;
	char err[256];

	if (match_calib_parse(&c, data, size, "fuzz", err, sizeof(err)) == 0) {
		struct match_calib_estimate e = match_calib_fmr(&c, 0.6);

		if (!(e.low <= e.value && e.value <= e.high) || isnan(e.value))
			abort();
		e = match_calib_threshold(&c, 0.01, 1000);
		if (isnan(e.value))
			abort();
		match_calib_free(&c);
	}
	return 0;
}
