/* Ethernet/VLAN/IPv4/IPv6/UDP parsing and SDP: what decides which camera a packet belongs to. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "dp.h"
#include "vg_test.h"

static size_t eth(uint8_t *b, const uint16_t *tags, int ntags, uint16_t type)
{
	size_t o = 12;
	memset(b, 0x11, 12);
	for (int i = 0; i < ntags; i++) {
		b[o] = (uint8_t)(tags[2 * i] >> 8), b[o + 1] = (uint8_t)tags[2 * i];
		b[o + 2] = (uint8_t)(tags[2 * i + 1] >> 8), b[o + 3] = (uint8_t)tags[2 * i + 1];
		o += 4;
	}
	b[o] = (uint8_t)(type >> 8), b[o + 1] = (uint8_t)type;
	return o + 2;
}

static size_t udp(uint8_t *b, uint16_t dport, size_t plen)
{
	b[0] = 0x13, b[1] = 0x88, b[2] = (uint8_t)(dport >> 8), b[3] = (uint8_t)dport;
	b[4] = (uint8_t)((8 + plen) >> 8), b[5] = (uint8_t)(8 + plen), b[6] = b[7] = 0;
	memset(b + 8, 0x5a, plen);
	return 8 + plen;
}

static size_t ip4(uint8_t *b, uint8_t proto, uint16_t frag, size_t l4len)
{
	memset(b, 0, 20);
	b[0] = 0x45;
	b[2] = (uint8_t)((20 + l4len) >> 8), b[3] = (uint8_t)(20 + l4len);
	b[6] = (uint8_t)(frag >> 8), b[7] = (uint8_t)frag;
	b[8] = 64, b[9] = proto;
	return 20;
}

static void test_pkt(void)
{
	uint8_t f[256];
	struct dp_udp_view v;
	size_t o;

	/* IPv4 / UDP to 5004, with Ethernet padding after it. */
	o = eth(f, NULL, 0, 0x0800);
	o += ip4(f + o, 17, 0x4000, 18);
	o += udp(f + o, 5004, 10);
	CHECK_EQ_INT(dp_pkt_parse(f, o + 6, &v), 0);
	CHECK_EQ_INT(v.dst_port, 5004);
	CHECK_EQ_INT(v.src_port, 5000);
	CHECK_EQ_INT(v.payload_len, 10);
	CHECK_EQ_INT(v.ip_version, 4);
	CHECK_EQ_INT(dp_pkt_parse(f, o - 1, &v), -EBADMSG); /* IP total length past the frame */
	/* A fragment (MF) and a later fragment (offset) are dropped as fragments. */
	ip4(f + 14, 17, 0x2000, 18);
	CHECK_EQ_INT(dp_pkt_parse(f, o, &v), -EMSGSIZE);
	ip4(f + 14, 17, 0x0010, 18);
	CHECK_EQ_INT(dp_pkt_parse(f, o, &v), -EMSGSIZE);
	ip4(f + 14, 6, 0, 18); /* TCP */
	CHECK_EQ_INT(dp_pkt_parse(f, o, &v), -EPROTONOSUPPORT);
	f[14] = 0x44; /* IHL 16 */
	CHECK_EQ_INT(dp_pkt_parse(f, o, &v), -EBADMSG);
	/* UDP length larger than the IP payload. */
	ip4(f + 14, 17, 0, 18);
	f[14 + 20 + 5] = 40;
	CHECK_EQ_INT(dp_pkt_parse(f, o, &v), -EBADMSG);

	/* QinQ then 802.1Q, VLAN 42 outermost. */
	uint16_t tags[] = { 0x88a8, 42, 0x8100, 7 };
	o = eth(f, tags, 2, 0x0800);
	o += ip4(f + o, 17, 0, 12);
	o += udp(f + o, 6000, 4);
	CHECK_EQ_INT(dp_pkt_parse(f, o, &v), 0);
	CHECK_EQ_INT(v.vlan, 42);
	CHECK_EQ_INT(v.dst_port, 6000);

	/* IPv6 with a destination-options header, then a fragment header. */
	o = eth(f, NULL, 0, 0x86dd);
	memset(f + o, 0, 40);
	f[o] = 0x60, f[o + 5] = 8 + 8 + 6, f[o + 6] = 60;
	f[o + 40] = 17, f[o + 41] = 0;
	size_t l = o + 48 + udp(f + o + 48, 7000, 6);
	CHECK_EQ_INT(dp_pkt_parse(f, l, &v), 0);
	CHECK_EQ_INT(v.ip_version, 6);
	CHECK_EQ_INT(v.dst_port, 7000);
	CHECK_EQ_INT(v.payload_len, 6);
	f[o + 6] = 44;
	CHECK_EQ_INT(dp_pkt_parse(f, l, &v), -EMSGSIZE);
	f[o + 6] = 60, f[o + 41] = 9; /* extension longer than the payload */
	CHECK_EQ_INT(dp_pkt_parse(f, l, &v), -EBADMSG);
	o = eth(f, NULL, 0, 0x0806); /* ARP */
	memset(f + o, 0, 28);
	CHECK_EQ_INT(dp_pkt_parse(f, o + 28, &v), -EPROTONOSUPPORT);
	CHECK_EQ_INT(dp_pkt_parse(f, 13, &v), -EBADMSG);
}

static void test_answer(void)
{
	static const uint8_t mac[6] = { 2, 0x70, 0x63, 0x61, 0x70, 0 };
	uint8_t f[128], out[128];
	uint32_t ip;
	memcpy(&ip, "\x0a\x00\x00\x02", 4);
	/* ARP who-has 10.0.0.2 tell 10.0.0.9, in VLAN 5. */
	uint16_t tags[] = { 0x8100, 5 };
	size_t o = eth(f, tags, 1, 0x0806);
	memcpy(f + 6, "\xaa\xbb\xcc\xdd\xee\xff", 6);
	static const uint8_t arp[28] = { 0, 1, 8, 0, 6, 4, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 10, 0, 0, 9,
					 0, 0, 0, 0, 0, 0, 10, 0, 0, 2 };
	memcpy(f + o, arp, 28);
	CHECK_EQ_INT(dp_pkt_answer(f, o + 28, ip, mac, out, sizeof(out)), (int)(o + 28));
	CHECK(memcmp(out, "\xaa\xbb\xcc\xdd\xee\xff", 6) == 0 && memcmp(out + 6, mac, 6) == 0);
	CHECK(out[14] == 0 && out[15] == 5);                                   /* VLAN kept */
	CHECK(out[o + 7] == 2);                                                /* a reply */
	CHECK(memcmp(out + o + 8, mac, 6) == 0 && memcmp(out + o + 14, "\x0a\x00\x00\x02", 4) == 0);
	CHECK(memcmp(out + o + 18, arp + 8, 10) == 0);                         /* to the asker */
	f[o + 27] = 3;                                                         /* for someone else */
	CHECK_EQ_INT(dp_pkt_answer(f, o + 28, ip, mac, out, sizeof(out)), 0);
	CHECK_EQ_INT(dp_pkt_answer(f, o + 20, ip, mac, out, sizeof(out)), -EBADMSG);
	/* ICMP echo request 10.0.0.9 -> 10.0.0.2 with 4 bytes of data. */
	o = eth(f, NULL, 0, 0x0800);
	ip4(f + o, 1, 0, 12);
	memcpy(f + o + 12, "\x0a\x00\x00\x09\x0a\x00\x00\x02", 8);
	static const uint8_t echo[12] = { 8, 0, 0xe5, 0xca, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g' };
	memcpy(f + o + 20, echo, 12);
	int n = dp_pkt_answer(f, o + 32, ip, mac, out, sizeof(out));
	CHECK_EQ_INT(n, (int)(o + 32));
	CHECK(memcmp(out + o + 12, "\x0a\x00\x00\x02\x0a\x00\x00\x09", 8) == 0);
	CHECK(out[o + 20] == 0);
	uint32_t sum = 0; /* the ICMP checksum verifies: the one's-complement sum is 0xffff */
	for (int i = 0; i < 12; i += 2)
		sum += (uint32_t)(out[o + 20 + i] << 8 | out[o + 21 + i]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	CHECK_EQ_INT(sum, 0xffff);
	CHECK_EQ_INT(dp_pkt_answer(f, o + 32, ip, mac, out, 20), -ENOSPC);
	f[o + 20] = 0; /* an echo reply is not answered */
	CHECK_EQ_INT(dp_pkt_answer(f, o + 32, ip, mac, out, sizeof(out)), 0);
}

static void test_sdp(void)
{
	/* What gst-rtsp-server's DESCRIBE looks like, with an audio stream we skip. */
	static const char text[] = "v=0\r\n"
				   "o=- 1188340656180883 1 IN IP4 127.0.0.1\r\n"
				   "s=Session streamed with GStreamer\r\n"
				   "t=0 0\r\n"
				   "m=audio 5002 RTP/AVP 0\r\n"
				   "a=rtpmap:0 PCMU/8000\r\n"
				   "m=video 5004 RTP/AVP 96\r\n"
				   "a=rtpmap:96 H264/90000\r\n"
				   "a=fmtp:96 packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets=Z0LAHtkA,aM4G4g==\r\n"
				   "a=control:stream=0\r\n"
				   "m=video 5006 RTP/AVP 97\r\n"
				   "a=rtpmap:97 H265/90000\r\n"
				   "a=fmtp:97 sprop-vps=QAEM; sprop-sps=QgEB; sprop-pps=RAHA\r\n"
				   "m=video 5008 RTP/AVP 26\r\n"
				   "m=video 5010 RTP/AVP 98\r\n"
				   "a=rtpmap:98 VP8/90000\r\n";
	struct dp_sdp sdp;
	char err[128];

	CHECK_EQ_INT(dp_sdp_parse(text, strlen(text), &sdp, err, sizeof(err)), 0);
	CHECK_EQ_INT(sdp.n_media, 3);
	CHECK_EQ_INT(sdp.media[0].codec, DP_CODEC_H264);
	CHECK_EQ_INT(sdp.media[0].port, 5004);
	CHECK_EQ_INT(sdp.media[0].pt, 96);
	CHECK_EQ_INT(sdp.media[0].packetization_mode, 1);
	CHECK(strcmp(sdp.media[0].control, "stream=0") == 0);
	static const uint8_t h264_sets[] = { 0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0, 0, 0, 0, 1, 0x68, 0xce, 0x06, 0xe2 };
	CHECK_EQ_INT(sdp.media[0].params_len, sizeof(h264_sets));
	CHECK(memcmp(sdp.media[0].params, h264_sets, sizeof(h264_sets)) == 0);
	CHECK_EQ_INT(sdp.media[1].codec, DP_CODEC_H265);
	CHECK_EQ_INT(sdp.media[1].params_len, 3 * 7);
	CHECK_EQ_INT(sdp.media[2].codec, DP_CODEC_MJPEG);
	CHECK_EQ_INT(sdp.media[2].port, 5008);

	static const char bad1[] = "v=0\nm=video x RTP/AVP 96\n";
	CHECK_EQ_INT(dp_sdp_parse(bad1, strlen(bad1), &sdp, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "line 2") != NULL);
	static const char bad2[] = "v=0\nm=video 5000 RTP/AVP 96\na=fmtp:96 sprop-parameter-sets=Z0L*\n";
	CHECK_EQ_INT(dp_sdp_parse(bad2, strlen(bad2), &sdp, err, sizeof(err)), -EBADMSG);
	static const char bad3[] = "garbage\n";
	CHECK_EQ_INT(dp_sdp_parse(bad3, strlen(bad3), &sdp, err, sizeof(err)), -EBADMSG);
}

static void test_rtsp_response(void)
{
	static const char ok[] = "RTSP/1.0 200 OK\r\nCSeq: 4\r\n"
				 "Transport: RTP/AVP;unicast;client_port=41000-41001;server_port=50000-50001\r\n"
				 "Session: ZjF4a;timeout=20\r\nContent-Length: 5\r\n\r\nv=0\r\nRTSP/1.0 200";
	struct dp_rtsp_response r;

	CHECK_EQ_INT(dp_rtsp_response_parse(ok, strlen(ok), &r), (int)strlen(ok) - 12);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.cseq, 4);
	CHECK(strcmp(r.session, "ZjF4a") == 0);
	CHECK_EQ_INT(r.session_timeout, 20);
	CHECK_EQ_INT(r.server_port, 50000);
	CHECK(r.body && r.body_len == 5 && memcmp(r.body, "v=0\r\n", 5) == 0);
	/* Incomplete: headers cut, body cut. */
	CHECK_EQ_INT(dp_rtsp_response_parse(ok, 20, &r), 0);
	CHECK_EQ_INT(dp_rtsp_response_parse(ok, strlen(ok) - 15, &r), 0);
	static const char auth[] = "RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n"
				   "WWW-Authenticate: Basic realm=\"cam\"\r\n"
				   "WWW-Authenticate: Digest realm=\"GStreamer RTSP Server\", nonce=\"5e2f\"\r\n\r\n";
	CHECK_EQ_INT(dp_rtsp_response_parse(auth, strlen(auth), &r), (int)strlen(auth));
	CHECK_EQ_INT(r.status, 401);
	CHECK(strcmp(r.auth_scheme, "Digest") == 0);
	CHECK(strcmp(r.realm, "GStreamer RTSP Server") == 0);
	CHECK(strcmp(r.nonce, "5e2f") == 0);
	static const char *bad[] = {
		"HTTP/1.1 200 OK\r\n\r\n",
		"RTSP/1.0 2x0 OK\r\n\r\n",
		"RTSP/1.0 200 OK\r\nno colon here\r\n\r\n",
		"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n",
		"RTSP/1.0 200 OK\r\nCSeq: -1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(dp_rtsp_response_parse(bad[i], strlen(bad[i]), &r), -EBADMSG);
}

int main(void)
{
	test_pkt();
	test_answer();
	test_sdp();
	test_rtsp_response();
	return vg_test_exit();
}
