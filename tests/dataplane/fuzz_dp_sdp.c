/* Fuzz target: SDP parsing; on success every stream is one we can depacketize, its fields bounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dp_sdp sdp;
	char err[128];

	if (dp_sdp_parse((const char *)data, size, &sdp, err, sizeof(err)) == 0) {
		if (sdp.n_media > DP_SDP_MAX_MEDIA)
			abort();
		for (unsigned i = 0; i < sdp.n_media; i++)
			if (sdp.media[i].codec == DP_CODEC_NONE || sdp.media[i].params_len > sizeof(sdp.media[i].params) ||
			    strlen(sdp.media[i].control) >= sizeof(sdp.media[i].control))
				abort();
	}
	return 0;
}
