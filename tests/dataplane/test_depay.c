/* Depacketizers: the access units a decoder gets from H.264, H.265 and MJPEG RTP payloads. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "dp.h"
#include "vg_test.h"

static uint8_t got[1 << 16];
static size_t got_len;
static unsigned got_n, got_flags;

static void on_au(void *arg, const struct dp_au *au)
{
	(void)arg;
	memcpy(got, au->data, au->len);
	got_len = au->len;
	got_flags = au->flags;
	got_n++;
}

static int push(struct dp_depay *d, const void *p, size_t n, uint32_t ts, bool marker, uint32_t gap)
{
	struct dp_rtp_pkt pkt = { .payload = p, .payload_len = n, .ts = ts, .marker = marker, .pt = 96 };
	return dp_depay_push(d, &pkt, gap);
}

static void test_h264(void)
{
	struct dp_depay *d;
	CHECK_EQ_INT(dp_depay_create(&d, DP_CODEC_H264, 1 << 16, on_au, NULL), 0);

	/* STAP-A with SPS and PPS, then an IDR in three FU-A fragments. */
	static const uint8_t stap[] = { 0x18, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3 };
	static const uint8_t fu1[] = { 0x7c, 0x85, 0xa, 0xb }, fu2[] = { 0x7c, 0x05, 0xc }, fu3[] = { 0x7c, 0x45, 0xd };
	static const uint8_t want[] = { 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0xa, 0xb, 0xc, 0xd };
	CHECK_EQ_INT(push(d, stap, sizeof(stap), 10, false, 0), 0);
	CHECK_EQ_INT(push(d, fu1, sizeof(fu1), 10, false, 0), 0);
	CHECK_EQ_INT(push(d, fu2, sizeof(fu2), 10, false, 0), 0);
	CHECK_EQ_INT(push(d, fu3, sizeof(fu3), 10, true, 0), 0);
	CHECK_EQ_INT(got_n, 1);
	CHECK_EQ_INT(got_len, sizeof(want));
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	CHECK_EQ_INT(got_flags, DP_AU_KEY);

	/* Single NAL; the next timestamp ends the access unit even without a marker. */
	static const uint8_t p1[] = { 0x41, 0x9a, 1 };
	CHECK_EQ_INT(push(d, p1, sizeof(p1), 20, false, 0), 0);
	CHECK_EQ_INT(got_n, 1);
	CHECK_EQ_INT(push(d, p1, sizeof(p1), 30, true, 0), 0);
	CHECK_EQ_INT(got_n, 3);
	CHECK_EQ_INT(got_len, 7);
	CHECK_EQ_INT(got_flags, 0);

	/* Malformed: FU without start, STAP-A size past the end, STAP-A with a size of 0, F bit, FU S+E,
	 * reserved and mode-2 types, an empty payload. Each is refused and damages its access unit;
	 * the good NAL before them is kept. */
	CHECK_EQ_INT(push(d, p1, sizeof(p1), 40, false, 0), 0);
	CHECK_EQ_INT(push(d, fu2, sizeof(fu2), 40, false, 0), -EBADMSG);
	static const uint8_t stap_bad[] = { 0x18, 0, 9, 0x67, 1 }, stap_zero[] = { 0x18, 0, 0 };
	static const uint8_t fbit[] = { 0xe1, 1 }, fu_se[] = { 0x7c, 0xc5, 1 }, mtap[] = { 0x1a, 0, 0, 0 };
	CHECK_EQ_INT(push(d, stap_bad, sizeof(stap_bad), 40, false, 0), -EBADMSG);
	CHECK_EQ_INT(push(d, stap_zero, sizeof(stap_zero), 40, false, 0), -EBADMSG);
	CHECK_EQ_INT(push(d, fbit, sizeof(fbit), 40, false, 0), -EBADMSG);
	CHECK_EQ_INT(push(d, fu_se, sizeof(fu_se), 40, false, 0), -EBADMSG);
	CHECK_EQ_INT(push(d, mtap, sizeof(mtap), 40, false, 0), -EBADMSG);
	CHECK_EQ_INT(push(d, mtap, 0, 40, true, 0), -EBADMSG);
	CHECK_EQ_INT(got_n, 4);
	CHECK_EQ_INT(got_len, 7);
	CHECK(got_flags & DP_AU_DAMAGED);

	/* A loss inside an FU: the fragment is dropped, the access unit marked damaged, and the orphan
	 * end fragment is loss (already counted by the reorder buffer), not malformed. */
	CHECK_EQ_INT(push(d, p1, sizeof(p1), 50, false, 0), 0);
	CHECK_EQ_INT(push(d, fu1, sizeof(fu1), 50, false, 0), 0);
	CHECK_EQ_INT(push(d, fu3, sizeof(fu3), 50, true, 1), 0);
	CHECK_EQ_INT(got_n, 5);
	CHECK_EQ_INT(got_len, 7);
	CHECK(got_flags & DP_AU_DAMAGED);
	/* An FU whose end never came is cut off at the next timestamp. */
	CHECK_EQ_INT(push(d, p1, sizeof(p1), 60, false, 0), 0);
	CHECK_EQ_INT(push(d, fu1, sizeof(fu1), 60, false, 0), 0);
	CHECK_EQ_INT(push(d, p1, sizeof(p1), 70, true, 0), 0);
	CHECK_EQ_INT(got_n, 7);
	dp_depay_flush(d);
	dp_depay_destroy(&d);
	CHECK(d == NULL);

	/* Out-of-band parameter sets go in front of the first access unit only. */
	CHECK_EQ_INT(dp_depay_create(&d, DP_CODEC_H264, 1 << 16, on_au, NULL), 0);
	static const uint8_t sps[] = { 0, 0, 0, 1, 0x67, 9 };
	CHECK_EQ_INT(dp_depay_set_prefix(d, sps, sizeof(sps)), 0);
	push(d, p1, sizeof(p1), 1, true, 0);
	CHECK_EQ_INT(got_len, 13);
	CHECK(memcmp(got, sps, sizeof(sps)) == 0);
	push(d, p1, sizeof(p1), 2, true, 0);
	CHECK_EQ_INT(got_len, 7);
	/* An access unit bigger than the buffer is dropped whole. */
	static uint8_t big[3000];
	big[0] = 0x41;
	got_n = 0;
	int rc = 0;
	for (int i = 0; i < 30; i++)
		rc |= push(d, big, sizeof(big), 3, false, 0);
	CHECK_EQ_INT(rc, -ENOBUFS);
	push(d, p1, sizeof(p1), 3, true, 0);
	CHECK_EQ_INT(got_n, 0);
	dp_depay_destroy(&d);
}

static void test_h265(void)
{
	struct dp_depay *d;
	CHECK_EQ_INT(dp_depay_create(&d, DP_CODEC_H265, 1 << 16, on_au, NULL), 0);
	/* AP with VPS (32) and SPS (33); FU of an IDR_W_RADL (19). */
	static const uint8_t ap[] = { 0x60, 1, 0, 3, 0x40, 1, 7, 0, 3, 0x42, 1, 8 };
	static const uint8_t fu1[] = { 0x62, 1, 0x80 | 19, 0xa }, fu2[] = { 0x62, 1, 0x40 | 19, 0xb };
	static const uint8_t want[] = { 0, 0, 0, 1, 0x40, 1, 7, 0, 0, 0, 1, 0x42, 1, 8, 0, 0, 0, 1, 0x26, 1, 0xa, 0xb };
	got_n = 0;
	CHECK_EQ_INT(push(d, ap, sizeof(ap), 1, false, 0), 0);
	CHECK_EQ_INT(push(d, fu1, sizeof(fu1), 1, false, 0), 0);
	CHECK_EQ_INT(push(d, fu2, sizeof(fu2), 1, true, 0), 0);
	CHECK_EQ_INT(got_n, 1);
	CHECK_EQ_INT(got_len, sizeof(want));
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	CHECK(got_flags & DP_AU_KEY);
	static const uint8_t single[] = { 0x02, 1, 0xd0, 5 }, ap_bad[] = { 0x60, 1, 0, 9, 0x40 };
	static const uint8_t paci[] = { 0x64, 1, 0, 0 };
	CHECK_EQ_INT(push(d, single, sizeof(single), 2, false, 0), 0);
	CHECK_EQ_INT(push(d, fu2, sizeof(fu2), 2, false, 0), -EBADMSG);
	CHECK_EQ_INT(push(d, ap_bad, sizeof(ap_bad), 2, false, 0), -EBADMSG);
	CHECK_EQ_INT(push(d, paci, sizeof(paci), 2, true, 0), -EBADMSG);
	CHECK_EQ_INT(got_n, 2);
	CHECK_EQ_INT(got_len, 8);
	CHECK(got_flags & DP_AU_DAMAGED);
	dp_depay_destroy(&d);
}

static const uint8_t *find(const uint8_t *p, size_t n, uint8_t a, uint8_t b)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i] == a && p[i + 1] == b)
			return p + i;
	return NULL;
}

static void test_jpeg(void)
{
	struct dp_depay *d;
	CHECK_EQ_INT(dp_depay_create(&d, DP_CODEC_MJPEG, 1 << 16, on_au, NULL), 0);
	/* Type 65 (4:2:0 with restart markers), Q 255 with in-band tables, 64x48, two fragments. */
	uint8_t p1[8 + 4 + 4 + 128 + 5], p2[8 + 4 + 3];
	memset(p1, 0, sizeof(p1));
	p1[4] = 65, p1[5] = 255, p1[6] = 8, p1[7] = 6;
	p1[8] = 0, p1[9] = 4, p1[10] = 0xff, p1[11] = 0xff; /* DRI 4 */
	p1[12] = 0, p1[13] = 0, p1[14] = 0, p1[15] = 128;
	for (int i = 0; i < 128; i++)
		p1[16 + i] = (uint8_t)(i + 1);
	memcpy(p1 + 144, "\x11\x22\x33\x44\x55", 5);
	memcpy(p2, p1, 12);
	p2[3] = 5; /* offset 5 */
	memcpy(p2 + 12, "\x66\x77\x88", 3);
	got_n = 0;
	CHECK_EQ_INT(push(d, p1, sizeof(p1), 9, false, 0), 0);
	CHECK_EQ_INT(push(d, p2, sizeof(p2), 9, true, 0), 0);
	CHECK_EQ_INT(got_n, 1);
	CHECK(got[0] == 0xff && got[1] == 0xd8);
	CHECK(got[got_len - 2] == 0xff && got[got_len - 1] == 0xd9);
	const uint8_t *dqt = find(got, got_len, 0xff, 0xdb);
	CHECK(dqt && dqt[3] == 2 + 2 * 65 && dqt[4] == 0 && dqt[5] == 1 && dqt[69] == 1 && dqt[70] == 65);
	const uint8_t *sof = find(got, got_len, 0xff, 0xc0);
	CHECK(sof && sof[5] == 0 && sof[6] == 48 && sof[7] == 0 && sof[8] == 64 && sof[11] == 0x22);
	const uint8_t *dri = find(got, got_len, 0xff, 0xdd);
	CHECK(dri && dri[5] == 4);
	const uint8_t *sos = find(got, got_len, 0xff, 0xda);
	CHECK(sos && memcmp(sos + 14, "\x11\x22\x33\x44\x55\x66\x77\x88\xff\xd9", 10) == 0);
	CHECK_EQ_INT(got_flags, DP_AU_KEY);
	/* Q 50 without tables: the RFC's scaled standard tables (Q 50 is them unscaled). */
	uint8_t q50[8 + 2] = { 0, 0, 0, 0, 1, 50, 8, 6, 0x12, 0x34 };
	CHECK_EQ_INT(push(d, q50, sizeof(q50), 10, true, 0), 0);
	dqt = find(got, got_len, 0xff, 0xdb);
	CHECK(dqt && dqt[5] == 16 && dqt[6] == 11 && dqt[70] == 17);
	/* Malformed: short header, width 0, type 2, Q 255 without tables, 16-bit tables. */
	uint8_t bad[8] = { 0, 0, 0, 0, 1, 50, 0, 6 };
	CHECK_EQ_INT(push(d, bad, 7, 11, false, 0), -EBADMSG);
	CHECK_EQ_INT(push(d, bad, 8, 11, false, 0), -EBADMSG);
	bad[6] = 8, bad[4] = 2;
	CHECK_EQ_INT(push(d, bad, 8, 11, false, 0), -EBADMSG);
	uint8_t noq[12] = { 0, 0, 0, 0, 1, 255, 8, 6, 0, 0, 0, 0 };
	CHECK_EQ_INT(push(d, noq, sizeof(noq), 11, false, 0), -EBADMSG);
	noq[9] = 1, noq[11] = 64;
	CHECK_EQ_INT(push(d, noq, sizeof(noq), 11, false, 0), -EBADMSG);
	/* A frame whose first fragment was lost yields nothing. */
	got_n = 0;
	CHECK_EQ_INT(push(d, p2, sizeof(p2), 12, true, 1), 0);
	CHECK_EQ_INT(got_n, 0);
	dp_depay_destroy(&d);
}

int main(void)
{
	test_h264();
	test_h265();
	test_jpeg();
	CHECK_EQ_INT(dp_depay_create(&(struct dp_depay *){ NULL }, DP_CODEC_NONE, 1 << 16, on_au, NULL), -EINVAL);
	return vg_test_exit();
}
