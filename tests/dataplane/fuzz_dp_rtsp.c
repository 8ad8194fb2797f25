/* Fuzz target: RTSP response parsing; a complete response spans at most the input, its body inside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_rtsp_response r;
	const char *buf = (const char *)data;
	int n = dp_rtsp_response_parse(buf, size, &r);

	if (n > 0) {
		if ((size_t)n > size || (r.body && (r.body < buf || r.body + r.body_len > buf + n)))
			abort();
		if (strlen(r.session) >= sizeof(r.session) || strlen(r.nonce) >= sizeof(r.nonce))
			abort();
	}
	return 0;
}
