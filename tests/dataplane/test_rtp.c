/* RTP header validation and the reorder buffer's counts: what the report's rtp_* fields show. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"
#include "vg_test.h"

static size_t mk(uint8_t *b, uint8_t b0, uint8_t b1, uint16_t seq, uint32_t ts)
{
	b[0] = b0, b[1] = b1, b[2] = (uint8_t)(seq >> 8), b[3] = (uint8_t)seq;
	b[4] = (uint8_t)(ts >> 24), b[5] = (uint8_t)(ts >> 16), b[6] = (uint8_t)(ts >> 8), b[7] = (uint8_t)ts;
	b[8] = 0xde, b[9] = 0xad, b[10] = 0xbe, b[11] = 0xef;
	return 12;
}

static void test_parse(void)
{
	uint8_t b[64];
	struct dp_rtp_pkt p;

	memset(b, 0xaa, sizeof(b));
	mk(b, 0x80, 0x80 | 96, 0x1234, 0x01020304);
	CHECK_EQ_INT(dp_rtp_parse(b, 20, &p), 0);
	CHECK_EQ_INT(p.seq, 0x1234);
	CHECK_EQ_INT(p.ts, 0x01020304);
	CHECK_EQ_INT(p.ssrc, 0xdeadbeef);
	CHECK_EQ_INT(p.pt, 96);
	CHECK(p.marker);
	CHECK_EQ_INT(p.payload_len, 8);
	CHECK(p.payload == b + 12);
	CHECK_EQ_INT(dp_rtp_parse(b, 11, &p), -EBADMSG);      /* truncated header */
	b[0] = 0x40;                                           /* version 1 */
	CHECK_EQ_INT(dp_rtp_parse(b, 20, &p), -EBADMSG);
	b[0] = 0x80 | 3;                                       /* 3 CSRCs: 24 bytes, packet 20 */
	CHECK_EQ_INT(dp_rtp_parse(b, 20, &p), -EBADMSG);
	CHECK_EQ_INT(dp_rtp_parse(b, 24, &p), 0);
	CHECK_EQ_INT(p.payload_len, 0);
	b[0] = 0x90;                                           /* extension of 2 words */
	b[12] = 0xbe, b[13] = 0xde, b[14] = 0, b[15] = 2;
	CHECK_EQ_INT(dp_rtp_parse(b, 23, &p), -EBADMSG);       /* extension beyond the packet */
	CHECK_EQ_INT(dp_rtp_parse(b, 30, &p), 0);
	CHECK_EQ_INT(p.payload_len, 6);
	CHECK(p.payload == b + 24);
	b[0] = 0xa0;                                           /* padding */
	b[19] = 4;
	CHECK_EQ_INT(dp_rtp_parse(b, 20, &p), 0);
	CHECK_EQ_INT(p.payload_len, 4);
	b[19] = 9;                                             /* padding beyond the payload */
	CHECK_EQ_INT(dp_rtp_parse(b, 20, &p), -EBADMSG);
	b[19] = 0;                                             /* padding count 0 */
	CHECK_EQ_INT(dp_rtp_parse(b, 20, &p), -EBADMSG);
	mk(b, 0x80, 200, 1, 1);                                /* an RTCP sender report */
	CHECK_EQ_INT(dp_rtp_parse(b, 28, &p), -EPROTONOSUPPORT);
}

static struct dp_reorder *mkro(unsigned max_held, unsigned window_ms)
{
	struct dp_reorder_conf c = { .slots = 64, .max_held = max_held, .window_ms = window_ms, .clock_rate = 90000 };
	struct dp_reorder *r = NULL;

	CHECK_EQ_INT(dp_reorder_create(&r, &c), 0);
	return r;
}

/* Push SEQ and drain; append what came out (seq numbers, from the item) to OUT. */
static int items[70000];
static void feed(struct dp_reorder *r, uint16_t seq, uint32_t ts, int *out, int *n, uint32_t *gaps, int expect_rc)
{
	void *it;
	uint32_t gap;

	items[seq] = seq;
	CHECK_EQ_INT(dp_reorder_push(r, seq, ts, &items[seq]), expect_rc);
	while ((it = dp_reorder_pop(r, false, &gap))) {
		out[(*n)++] = *(int *)it;
		*gaps += gap;
	}
}

static void test_reorder(void)
{
	int out[256], n = 0;
	uint32_t gaps = 0;
	struct dp_reorder *r = mkro(8, 0);
	const struct dp_rtp_stats *s = dp_reorder_stats(r);

	/* Wrap-around in order, then 3 and 2 swapped, then a duplicate of each kind. */
	feed(r, 65534, 0, out, &n, &gaps, 0);
	feed(r, 65535, 0, out, &n, &gaps, 0);
	feed(r, 0, 0, out, &n, &gaps, 0);
	feed(r, 1, 0, out, &n, &gaps, 0);
	feed(r, 3, 0, out, &n, &gaps, 0);
	CHECK_EQ_INT(n, 4);
	feed(r, 3, 0, out, &n, &gaps, -EEXIST); /* duplicate of a held one */
	feed(r, 2, 0, out, &n, &gaps, 0);
	CHECK_EQ_INT(n, 6);
	CHECK_EQ_INT(out[4], 2);
	CHECK_EQ_INT(out[5], 3);
	feed(r, 1, 0, out, &n, &gaps, -EEXIST); /* duplicate of a delivered one */
	CHECK_EQ_INT(s->reordered, 1);
	CHECK_EQ_INT(s->duplicates, 2);
	CHECK_EQ_INT(s->packets, 8);
	CHECK_EQ_INT(s->lost, 0);
	/* 4 lost: 5..12 wait (8 held = max_held), then 4 is given up on. */
	for (uint16_t q = 5; q <= 12; q++)
		feed(r, q, 0, out, &n, &gaps, 0);
	CHECK_EQ_INT(n, 14);
	CHECK_EQ_INT(s->lost, 1);
	CHECK_EQ_INT(gaps, 1);
	feed(r, 4, 0, out, &n, &gaps, -ETIME); /* late: its gap was given up on */
	CHECK_EQ_INT(s->late, 1);
	/* A flush gives up on every gap at once. */
	feed(r, 15, 0, out, &n, &gaps, 0);
	uint32_t gap = 0;
	void *it = dp_reorder_pop(r, true, &gap);
	CHECK(it && *(int *)it == 15);
	CHECK_EQ_INT(gap, 2);
	CHECK_EQ_INT(s->lost, 3);
	/* The sender restarts at 40000: the first packet is held in probation, the second confirms. */
	feed(r, 40000, 0, out, &n, &gaps, -ETIME);
	feed(r, 40001, 0, out, &n, &gaps, 0);
	CHECK_EQ_INT(s->resyncs, 1);
	CHECK_EQ_INT(out[n - 1], 40001);
	feed(r, 40002, 0, out, &n, &gaps, 0);
	CHECK_EQ_INT(out[n - 1], 40002);
	/* A jump past the ring (but not a restart) gives up on what no longer fits behind it; the
	 * last 63 sequence numbers may still come, until the flush. */
	uint64_t lost0 = s->lost;
	feed(r, 40102, 0, out, &n, &gaps, 0);
	CHECK_EQ_INT(out[n - 1], 40002);
	CHECK_EQ_INT(s->lost - lost0, 36);
	it = dp_reorder_pop(r, true, &gap);
	CHECK(it && *(int *)it == 40102);
	CHECK_EQ_INT(gap, 99);
	CHECK_EQ_INT(s->lost - lost0, 99);
	dp_reorder_destroy(&r);
	CHECK(r == NULL);

	/* The time window: a gap is given up on once the packet behind it waited 50 ms of RTP time. */
	r = mkro(60, 50);
	s = dp_reorder_stats(r);
	n = 0;
	feed(r, 100, 0, out, &n, &gaps, 0);
	feed(r, 102, 3000, out, &n, &gaps, 0);
	feed(r, 103, 3000 + 4500, out, &n, &gaps, 0); /* 50 ms after 102: not yet past */
	CHECK_EQ_INT(n, 1);
	feed(r, 104, 3000 + 4501, out, &n, &gaps, 0);
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(s->lost, 1);
	dp_reorder_destroy(&r);

	struct dp_reorder_conf bad = { .slots = 100, .max_held = 8 };
	CHECK_EQ_INT(dp_reorder_create(&r, &bad), -EINVAL);
	bad.slots = 64, bad.max_held = 64;
	CHECK_EQ_INT(dp_reorder_create(&r, &bad), -EINVAL);
}

/*
 * A seeded impairment model (what the integration test does to real captures): drop, swap
 * neighbours, duplicate. With a window wide enough, the counts equal the model's exactly and
 * every packet not dropped comes out once, in order.
 */
static void test_impaired(void)
{
	enum { N = 20000 };
	static uint16_t seqs[2 * N];
	static int outv[2 * N];
	unsigned n = 0, dropped = 0, dups = 0, swaps = 0;
	uint32_t rng = 12345;
	int outn = 0;
	uint32_t gaps = 0;

#define RND() (rng = rng * 1103515245u + 12345u, (rng >> 16) & 0x7fff)
	for (unsigned i = 0; i < N; i++) {
		uint16_t q = (uint16_t)(60000 + i);
		unsigned x = RND() % 100;
		if (i > 2 && i < N - 3 && x < 2) {
			dropped++;
			continue;
		}
		seqs[n++] = q;
		if (x >= 2 && x < 4) {
			seqs[n++] = q;
			dups++;
		}
	}
	/* Swap some neighbours that are distinct and both kept (each swap: one reordered packet). */
	for (unsigned i = 3; i + 4 < n; i++) {
		if (RND() % 100 < 3 && seqs[i] != seqs[i + 1] && seqs[i + 1] != seqs[i + 2] && seqs[i - 1] != seqs[i]) {
			uint16_t t = seqs[i];
			seqs[i] = seqs[i + 1];
			seqs[i + 1] = t;
			swaps++;
			i += 3;
		}
	}
#undef RND
	struct dp_reorder_conf c = { .slots = 1024, .max_held = 64, .window_ms = 0, .clock_rate = 90000 };
	struct dp_reorder *r;
	CHECK_EQ_INT(dp_reorder_create(&r, &c), 0);
	for (unsigned i = 0; i < n; i++) {
		void *it;
		uint32_t gap;
		items[seqs[i]] = seqs[i];
		dp_reorder_push(r, seqs[i], 0, &items[seqs[i]]);
		while ((it = dp_reorder_pop(r, i + 1 == n, &gap))) {
			outv[outn++] = *(int *)it;
			gaps += gap;
		}
	}
	const struct dp_rtp_stats *s = dp_reorder_stats(r);
	CHECK_EQ_INT(s->packets, n);
	CHECK_EQ_INT(s->lost, dropped);
	CHECK_EQ_INT(s->duplicates, dups);
	CHECK_EQ_INT(s->reordered, swaps);
	CHECK_EQ_INT(s->late, 0);
	CHECK_EQ_INT(outn, N - dropped);
	CHECK_EQ_INT(gaps, dropped);
	int inorder = 1;
	for (int i = 1; i < outn; i++)
		inorder &= (uint16_t)(outv[i] - outv[i - 1]) >= 1;
	CHECK(inorder);
	dp_reorder_destroy(&r);
}

static void test_rtcp(void)
{
	/* A compound packet: RR (empty), then SR; then SDES alone; then a length past the end. */
	uint8_t b[64] = { 0x80, 201, 0, 1, 0, 0, 0, 9,
			  0x80, 200, 0, 6, 0x12, 0x34, 0x56, 0x78, 0x83, 0xaa, 0x7e, 0x80, 0x80, 0, 0, 0, 0, 0, 0x10, 0 };
	struct dp_rtcp_sr sr;

	CHECK_EQ_INT(dp_rtcp_parse_sr(b, 8 + 28, &sr), 0);
	CHECK_EQ_INT(sr.ssrc, 0x12345678);
	CHECK_EQ_INT(sr.rtp_ts, 0x1000);
	CHECK(sr.ntp == ((uint64_t)0x83aa7e80 << 32 | 0x80000000u));
	CHECK(dp_ntp_to_unix_ns(sr.ntp) == 0ull + 500000000ull); /* 0x83aa7e80 is the Unix epoch, + 0.5 s */
	CHECK_EQ_INT(dp_rtcp_parse_sr(b, 8, &sr), -ENOENT);
	CHECK_EQ_INT(dp_rtcp_parse_sr(b, 8 + 20, &sr), -EBADMSG);
	b[3] = 40;
	CHECK_EQ_INT(dp_rtcp_parse_sr(b, 36, &sr), -EBADMSG);
}

int main(void)
{
	test_parse();
	test_rtcp();
	test_reorder();
	test_impaired();
	return vg_test_exit();
}
