/*
 * Shared body of the depacketizer fuzz targets: the input is a run of packets, each
 * [len:2][flags:1][payload] (flags: bit 0 marker, bit 1 a loss before it, bits 2-7 a timestamp
 * step), fed in order to one depacketizer. Access units must lie inside the buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_on_au(void *arg, const struct dp_au *au)
{
	size_t *total = arg;
	volatile uint8_t sink = 0;

	if (au->len == 0 || !au->data)
		abort();
	sink ^= au->data[0] ^ au->data[au->len - 1];
	*total += au->len;
	(void)sink;
}

static int fuzz_depay(enum dp_codec codec, const uint8_t *data, size_t size)
{
	struct dp_depay *d;
	size_t total = 0;
	uint32_t ts = 0;

	if (dp_depay_create(&d, codec, 1 << 16, fuzz_on_au, &total) < 0)
		return 0;
	for (size_t off = 0; off + 3 <= size;) {
		size_t n = (size_t)data[off] << 8 | data[off + 1];
		uint8_t fl = data[off + 2];
		off += 3;
		if (n > size - off)
			n = size - off;
		ts += (uint32_t)(fl >> 2) * 3000;
		struct dp_rtp_pkt p = { .payload = data + off, .payload_len = n, .ts = ts, .marker = fl & 1, .pt = 96 };
		dp_depay_push(d, &p, (fl >> 1) & 1);
		off += n;
	}
	dp_depay_flush(d);
	dp_depay_destroy(&d);
	return 0;
}
