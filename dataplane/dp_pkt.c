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

/*
 * The Ethernet header and up to two VLAN tags (802.1Q, 802.1ad): *OFF the payload's offset, *TYPE
 * its EtherType, *VLAN the outer tag's id (0 untagged). -EBADMSG if the frame is too short.
 */
static inline int eth_header(const uint8_t *frame, size_t len, size_t *off, uint16_t *type, uint16_t *vlan)
{
	size_t o = 14;
	uint16_t t;

	*vlan = 0;
	if (len < 14)
		return -EBADMSG;
	t = rd16(frame + 12);
	for (int tags = 0; (t == 0x8100 || t == 0x88a8) && tags < 2; tags++) {
		if (len < o + 4)
			return -EBADMSG;
		if (tags == 0)
			*vlan = rd16(frame + o) & 0x0fff;
		t = rd16(frame + o + 2);
		o += 4;
	}
	*off = o;
	*type = t;
	return 0;
}

int dp_pkt_parse(const uint8_t *frame, size_t len, struct dp_udp_view *out)
{
	struct dp_udp_view v = { 0 };
	size_t off;
	uint16_t type;

	if (eth_header(frame, len, &off, &type, &v.vlan) < 0)
		return -EBADMSG;
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

static uint16_t csum16(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int dp_pkt_answer(const uint8_t *frame, size_t len, uint32_t local_ip, const uint8_t mac[6], uint8_t *out,
		  size_t cap)
{
	size_t off;
	uint16_t type, vlan;
	uint8_t ip[4];

	memcpy(ip, &local_ip, 4); /* network order: the bytes as on the wire */
	if (eth_header(frame, len, &off, &type, &vlan) < 0)
		return -EBADMSG;
	if (type == 0x0806) {
		const uint8_t *a = frame + off;
		if (len < off + 28)
			return -EBADMSG;
		/* Ethernet/IPv4 ARP request for our address only. */
		if (rd16(a) != 1 || rd16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 || rd16(a + 6) != 1 ||
		    memcmp(a + 24, ip, 4) != 0)
			return 0;
		if (cap < off + 28)
			return -ENOSPC;
		memcpy(out, frame + 6, 6); /* to the asker */
		memcpy(out + 6, mac, 6);
		memcpy(out + 12, frame + 12, off - 12); /* VLAN tags and ethertype */
		uint8_t *r = out + off;
		memcpy(r, a, 6);
		r[6] = 0, r[7] = 2; /* reply */
		memcpy(r + 8, mac, 6);
		memcpy(r + 14, ip, 4);
		memcpy(r + 18, a + 8, 10); /* the asker's MAC and IP */
		return (int)(off + 28);
	}
	if (type == 0x0800) {
		const uint8_t *h = frame + off;
		if (len < off + 20 || (h[0] >> 4) != 4)
			return -EBADMSG;
		size_t ihl = (size_t)(h[0] & 0x0f) * 4, tot = rd16(h + 2);
		if (ihl < 20 || tot < ihl + 8 || off + tot > len)
			return -EBADMSG;
		if (h[9] != 1 || memcmp(h + 16, ip, 4) != 0 || (rd16(h + 6) & 0x3fff) || h[ihl] != 8 || h[ihl + 1] != 0)
			return 0; /* not an unfragmented echo request to us */
		if (cap < off + tot)
			return -ENOSPC;
		memcpy(out, frame + 6, 6);
		memcpy(out + 6, mac, 6);
		memcpy(out + 12, frame + 12, off - 12);
		uint8_t *r = out + off;
		memcpy(r, h, tot);
		memcpy(r + 12, h + 16, 4); /* swap addresses: the header checksum stays right */
		memcpy(r + 16, h + 12, 4);
		r[ihl] = 0; /* echo reply */
		r[ihl + 2] = r[ihl + 3] = 0;
		uint16_t c = csum16(r + ihl, tot - ihl);
		r[ihl + 2] = (uint8_t)(c >> 8), r[ihl + 3] = (uint8_t)c;
		return (int)(off + tot);
	}
	return 0;
}
