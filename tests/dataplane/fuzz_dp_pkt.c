/* Fuzz target: Ethernet/VLAN/IPv4/IPv6/UDP parsing of one frame; the payload must lie inside it. */
#include <stdint.h>
#include <stdlib.h>

#include "dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_udp_view v;

	if (dp_pkt_parse(data, size, &v) == 0 && (v.payload < data || v.payload + v.payload_len > data + size))
		abort();
	return 0;
}
