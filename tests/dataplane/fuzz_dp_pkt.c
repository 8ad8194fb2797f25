/* Fuzz target: Ethernet/VLAN/IPv4/IPv6/UDP parsing of one frame (the payload must lie inside it),
 * and the ARP/ICMP answer to it. */
#include <stdint.h>
#include <stdlib.h>

#include "dp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	static uint8_t out[2048];
	struct dp_udp_view v;
	uint32_t ip = 0x0200000a; /* 10.0.0.2 */

	int n = dp_pkt_answer(data, size, ip, mac, out, sizeof(out));
	if (n > (int)sizeof(out))
		abort();
	if (dp_pkt_parse(data, size, &v) == 0 && (v.payload < data || v.payload + v.payload_len > data + size))
		abort();
	return 0;
}
