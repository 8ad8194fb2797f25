/*
 * RTP header validation (RFC 3550 5.1) and the per-camera reorder buffer.
 *
 * The reorder buffer is a ring of `slots` entries indexed by sequence number; each entry keeps
 * its sequence number and whether it is held, was delivered or was given up on, so a duplicate
 * of a delivered packet and a packet that comes after its gap was given up on are told apart for
 * up to `slots` sequence numbers back. Cost per packet: O(1), except while a gap is open, when
 * finding the oldest held packet scans at most the gap's length (bounded by `slots`).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"
#include "vg_base.h"

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int dp_rtp_parse(const uint8_t *pkt, size_t len, struct dp_rtp_pkt *out)
{
	size_t off = 12;
	size_t end = len;

	if (len < 12 || (pkt[0] >> 6) != 2)
		return -EBADMSG;
	/* RTCP shares the port under rtcp-mux: PT 200-204 appear as marker + 72..76. */
	if (pkt[1] >= 200 && pkt[1] <= 204)
		return -EPROTONOSUPPORT;
	off += (size_t)(pkt[0] & 0x0f) * 4;
	if (off > len)
		return -EBADMSG;
	if (pkt[0] & 0x10) {
		if (off + 4 > len)
			return -EBADMSG;
		off += 4 + (size_t)rd16(pkt + off + 2) * 4;
		if (off > len)
			return -EBADMSG;
	}
	if (pkt[0] & 0x20) {
		uint8_t pad = pkt[len - 1];
		if (pad == 0 || pad > len - off)
			return -EBADMSG;
		end -= pad;
	}
	out->payload = pkt + off;
	out->payload_len = end - off;
	out->marker = pkt[1] >> 7;
	out->pt = pkt[1] & 0x7f;
	out->seq = rd16(pkt + 2);
	out->ts = rd32(pkt + 4);
	out->ssrc = rd32(pkt + 8);
	return 0;
}

int dp_rtcp_parse_sr(const uint8_t *pkt, size_t len, struct dp_rtcp_sr *out)
{
	size_t off = 0;

	if (len < 8)
		return -EBADMSG;
	/* At most len / 4 packets: each is at least one 32-bit word. */
	while (off + 4 <= len) {
		const uint8_t *p = pkt + off;
		size_t plen = ((size_t)rd16(p + 2) + 1) * 4;
		if ((p[0] >> 6) != 2 || plen > len - off)
			return -EBADMSG;
		if (p[1] == 200) {
			if (plen < 28)
				return -EBADMSG;
			out->ssrc = rd32(p + 4);
			out->ntp = (uint64_t)rd32(p + 8) << 32 | rd32(p + 12);
			out->rtp_ts = rd32(p + 16);
			return 0;
		}
		if (p[1] < 192 || p[1] > 223)
			return -EBADMSG;
		off += plen;
	}
	return off == len ? -ENOENT : -EBADMSG;
}

uint64_t dp_ntp_to_unix_ns(uint64_t ntp)
{
	const uint64_t epoch_delta = 2208988800ull; /* 1900-01-01 to 1970-01-01, seconds */
	uint64_t sec = ntp >> 32, frac = ntp & 0xffffffffu;

	if (sec < epoch_delta)
		return 0;
	return (sec - epoch_delta) * 1000000000ull + ((frac * 1000000000ull) >> 32);
}

/* ---- reorder --------------------------------------------------------------------------------- */

enum slot_state { SLOT_EMPTY, SLOT_HELD, SLOT_DONE, SLOT_LOST };

struct slot {
	void *item;
	uint32_t ts;
	uint16_t seq;
	uint8_t state;
};

/* RFC 3550 A.1: a jump larger than this (either way) is the sender restarting, not loss. */
#define DP_MAX_DROPOUT 3000

struct dp_reorder {
	struct dp_reorder_conf conf;
	uint32_t mask;
	uint32_t window_ticks;
	bool started;
	uint16_t next;       /* the sequence number due next */
	uint16_t highest;    /* the highest received */
	uint32_t newest_ts;  /* timestamp of `highest` */
	unsigned held;
	uint32_t gap_acc;    /* given up on since the last delivery */
	bool bad_valid;
	uint16_t bad_seq;    /* RFC 3550's probation: a second packet here confirms a restart */
	bool pending;        /* a packet that cannot go in a slot until pop has made room */
	bool pending_restart;
	struct slot pend;
	struct dp_rtp_stats stats;
	struct slot slots[];
};

int dp_reorder_create(struct dp_reorder **out, const struct dp_reorder_conf *conf)
{
	struct dp_reorder *r;

	if (!conf || conf->slots < 16 || conf->slots > DP_REORDER_MAX_SLOTS || (conf->slots & (conf->slots - 1)) ||
	    conf->max_held < 1 || conf->max_held >= conf->slots || (conf->window_ms && !conf->clock_rate))
		return -EINVAL;
	r = calloc(1, sizeof(*r) + conf->slots * sizeof(struct slot));
	if (!r)
		return -ENOMEM;
	r->conf = *conf;
	r->mask = conf->slots - 1;
	r->window_ticks = (uint32_t)((uint64_t)conf->window_ms * conf->clock_rate / 1000);
	*out = r;
	return 0;
}

void dp_reorder_destroy(struct dp_reorder **r)
{
	free(*r);
	*r = NULL;
}

const struct dp_rtp_stats *dp_reorder_stats(const struct dp_reorder *r)
{
	return &r->stats;
}

static void slot_put(struct dp_reorder *r, uint16_t seq, uint32_t ts, void *item)
{
	struct slot *s = &r->slots[seq & r->mask];

	s->item = item;
	s->ts = ts;
	s->seq = seq;
	s->state = SLOT_HELD;
	r->held++;
	if ((int16_t)(seq - r->highest) > 0) {
		r->highest = seq;
		r->newest_ts = ts;
	}
}

int dp_reorder_push(struct dp_reorder *r, uint16_t seq, uint32_t ts, void *item)
{
	if (VG_NEVER(r->pending))
		return -EBUSY; /* the caller did not pop after the last push */
	r->stats.packets++;
	if (!r->started) {
		r->started = true;
		r->next = seq;
		r->highest = seq;
		r->newest_ts = ts;
	}
	int32_t d = (int16_t)(uint16_t)(seq - r->next);
	struct slot *s = &r->slots[seq & r->mask];

	if (d > DP_MAX_DROPOUT || d < -DP_MAX_DROPOUT) {
		if (r->bad_valid && seq == r->bad_seq) {
			/* Two packets in a row of a new numbering: the sender restarted. */
			r->bad_valid = false;
			r->stats.resyncs++;
			r->pending = true;
			r->pending_restart = true;
			r->pend = (struct slot){ .item = item, .ts = ts, .seq = seq, .state = SLOT_HELD };
			return 0;
		}
		r->bad_valid = true;
		r->bad_seq = (uint16_t)(seq + 1);
		r->stats.late++;
		return -ETIME;
	}
	r->bad_valid = false;
	if (d < 0) {
		if (s->seq == seq && s->state == SLOT_DONE) {
			r->stats.duplicates++;
			return -EEXIST;
		}
		r->stats.late++;
		return -ETIME;
	}
	if (s->seq == seq && s->state == SLOT_HELD) {
		r->stats.duplicates++;
		return -EEXIST;
	}
	if ((int16_t)(seq - r->highest) < 0)
		r->stats.reordered++;
	if ((uint32_t)d > r->mask) {
		/* Beyond the ring: pop gives up on what is in the way, then files it. */
		r->pending = true;
		r->pending_restart = false;
		r->pend = (struct slot){ .item = item, .ts = ts, .seq = seq, .state = SLOT_HELD };
		return 0;
	}
	slot_put(r, seq, ts, item);
	return 0;
}

/* Whether the packet waiting behind the gap at `next` has waited long enough. */
static bool window_expired(const struct dp_reorder *r)
{
	if (!r->window_ticks)
		return false;
	for (uint32_t i = 0; i <= r->mask; i++) {
		const struct slot *s = &r->slots[(uint16_t)(r->next + i) & r->mask];
		if (s->state == SLOT_HELD && s->seq == (uint16_t)(r->next + i))
			return (int32_t)(r->newest_ts - s->ts) > (int32_t)r->window_ticks;
	}
	return false;
}

void *dp_reorder_pop(struct dp_reorder *r, bool flush, uint32_t *gap)
{
	for (;;) {
		if (r->pending) {
			if (r->pending_restart && r->held == 0) {
				r->next = r->pend.seq;
				r->highest = r->pend.seq;
				r->newest_ts = r->pend.ts;
				r->gap_acc = 0;
				memset(r->slots, 0, (r->mask + 1) * sizeof(struct slot));
				r->pending = false;
				slot_put(r, r->pend.seq, r->pend.ts, r->pend.item);
				continue;
			}
			if (!r->pending_restart && (uint32_t)(int16_t)(uint16_t)(r->pend.seq - r->next) <= r->mask) {
				r->pending = false;
				slot_put(r, r->pend.seq, r->pend.ts, r->pend.item);
				continue;
			}
		}
		struct slot *s = &r->slots[r->next & r->mask];

		if (s->state == SLOT_HELD && s->seq == r->next) {
			void *item = s->item;

			s->state = SLOT_DONE;
			s->item = NULL;
			r->next++;
			r->held--;
			*gap = r->gap_acc;
			r->gap_acc = 0;
			return item;
		}
		if (r->held == 0 && !(r->pending && !r->pending_restart))
			return NULL;
		if (!(flush || r->pending || r->held >= r->conf.max_held || window_expired(r)))
			return NULL;
		s->state = SLOT_LOST;
		s->seq = r->next;
		s->item = NULL;
		r->next++;
		r->stats.lost++;
		r->gap_acc++;
	}
}
