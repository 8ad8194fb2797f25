/*
 * Fuzz target: RTP validation, RTCP sender reports and the reorder buffer. The input is a run of packets, each
 * [len:1][bytes]; every valid one is pushed and the buffer drained, as the RX loop does. Checks
 * that every item pushed and taken comes back exactly once and the counts add up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_reorder_conf conf = { .slots = 64, .max_held = 16, .window_ms = 20, .clock_rate = 90000 };
	struct dp_reorder *r;
	static int tokens[4096];
	unsigned taken = 0, out = 0;

	if (dp_reorder_create(&r, &conf) < 0)
		return 0;
	for (size_t off = 0; off < size && taken < 4096;) {
		size_t n = data[off++];
		if (n > size - off)
			n = size - off;
		struct dp_rtp_pkt p;
		struct dp_rtcp_sr sr;
		dp_rtcp_parse_sr(data + off, n, &sr);
		if (dp_rtp_parse(data + off, n, &p) == 0) {
			if (p.payload < data + off || p.payload + p.payload_len > data + off + n)
				abort();
			if (dp_reorder_push(r, p.seq, p.ts, &tokens[taken]) == 0)
				taken++;
			uint32_t gap;
			while (dp_reorder_pop(r, false, &gap))
				out++;
		}
		off += n;
	}
	uint32_t gap;
	while (dp_reorder_pop(r, true, &gap))
		out++;
	const struct dp_rtp_stats *s = dp_reorder_stats(r);
	if (out != taken || s->duplicates + s->late > s->packets)
		abort();
	dp_reorder_destroy(&r);
	return 0;
}
