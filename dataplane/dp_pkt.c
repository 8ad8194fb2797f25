/*
 * Ethernet (VLAN), IPv4/IPv6 and UDP parsing of one received frame. Reads at most the frame's
 * first 14 + 8 + 40 + 8 * extension headers bytes; bounded: at most 8 IPv6 extension headers.
 */
#include <errno.h>
#include <string.h>

#include "dp.h"

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int parse_udp(const uint8_t *p, size_t len, struct dp_udp_view *v)
{
	if (len < 8)
		return -EBADMSG;
	size_t ulen = rd16(p + 4);
	/* UDP length 0 is legal only for IPv6 jumbograms; we take it as "to the end of the IP payload". */
	if (ulen == 0)
		ulen = len;
	if (ulen < 8 || ulen > len)
		return -EBADMSG;
	v->src_port = rd16(p);
	v->dst_port = rd16(p + 2);
	v->payload = p + 8;
	v->payload_len = ulen - 8;
	return 0;
}

int dp_pkt_parse(const uint8_t *frame, size_t len, struct dp_udp_view *out)
{
	struct dp_udp_view v = { 0 };
	size_t off = 12;
	uint16_t type;

	if (len < 14)
		return -EBADMSG;
	type = rd16(frame + off);
	off += 2;
	for (int tags = 0; (type == 0x8100 || type == 0x88a8) && tags < 2; tags++) {
		if (len < off + 4)
			return -EBADMSG;
		if (tags == 0)
			v.vlan = rd16(frame + off) & 0x0fff;
		type = rd16(frame + off + 2);
		off += 4;
	}
	const uint8_t *ip = frame + off;
	size_t iplen = len - off;

	if (type == 0x0800) {
		if (iplen < 20 || (ip[0] >> 4) != 4)
			return -EBADMSG;
		size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
		size_t tot = rd16(ip + 2);
		if (ihl < 20 || tot < ihl || tot > iplen)
			return -EBADMSG;
		/* MF set or a non-zero offset: a fragment. */
		if (rd16(ip + 6) & 0x3fff)
			return -EMSGSIZE;
		if (ip[9] != 17)
			return -EPROTONOSUPPORT;
		v.ip_version = 4;
		int rc = parse_udp(ip + ihl, tot - ihl, &v);
		if (rc < 0)
			return rc;
	} else if (type == 0x86dd) {
		if (iplen < 40 || (ip[0] >> 4) != 6)
			return -EBADMSG;
		size_t plen = rd16(ip + 4);
		if (40 + plen > iplen)
			return -EBADMSG;
		uint8_t nh = ip[6];
		const uint8_t *p = ip + 40;
		size_t left = plen;
		/* Hop-by-hop (0), routing (43), destination options (60): skip; fragment (44): drop. */
		for (int i = 0; i < 8 && (nh == 0 || nh == 43 || nh == 60 || nh == 44); i++) {
			if (nh == 44)
				return -EMSGSIZE;
			if (left < 8)
				return -EBADMSG;
			size_t elen = ((size_t)p[1] + 1) * 8;
			if (elen > left)
				return -EBADMSG;
			nh = p[0];
			p += elen;
			left -= elen;
		}
		if (nh != 17)
			return -EPROTONOSUPPORT;
		v.ip_version = 6;
		int rc = parse_udp(p, left, &v);
		if (rc < 0)
			return rc;
	} else {
		return -EPROTONOSUPPORT;
	}
	*out = v;
	return 0;
}
