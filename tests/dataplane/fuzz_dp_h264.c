/* Fuzz target: the h264 depacketizer (see fuzz_dp_depay.h for the input's layout). */
#include "fuzz_dp_depay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_depay(DP_CODEC_H264, data, size);
}
