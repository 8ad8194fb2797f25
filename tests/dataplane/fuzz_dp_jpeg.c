/* Fuzz target: the jpeg depacketizer (see fuzz_dp_depay.h for the input's layout). */
#include "fuzz_dp_depay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_depay(DP_CODEC_MJPEG, data, size);
}
