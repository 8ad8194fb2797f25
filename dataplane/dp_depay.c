/*
 * Depacketizers: RTP payloads in sequence order to access units. H.264 (RFC 6184: single NAL,
 * STAP-A, FU-A; packetization modes 0 and 1), H.265 (RFC 7798: single, AP, FU; no DONL) and
 * MJPEG (RFC 2435, rebuilt into a baseline JFIF frame in dp_depay_jpeg.c).
 *
 * Each payload byte is copied once, into the access-unit buffer; the buffer is sized at create
 * time and never grows (an access unit that outgrows it is dropped whole). Every length read from
 * a packet is checked against the payload before use; a malformed packet is validated completely
 * before any of it is appended, so a refused packet leaves the buffer as it was.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dp_int.h"
#include "vg_pool.h"

static const uint8_t start_code[4] = { 0, 0, 0, 1 };

const char *dp_codec_name(enum dp_codec codec)
{
	switch (codec) {
	case DP_CODEC_H264:
		return "h264";
	case DP_CODEC_H265:
		return "h265";
	case DP_CODEC_MJPEG:
		return "mjpeg";
	default:
		return "none";
	}
}

int dp_depay_create(struct dp_depay **out, enum dp_codec codec, size_t max_au, dp_au_fn *emit, void *arg)
{
	struct dp_depay *d;

	if (codec != DP_CODEC_H264 && codec != DP_CODEC_H265 && codec != DP_CODEC_MJPEG)
		return -EINVAL;
	if (max_au < 4096 || max_au > (256u << 20) || !emit)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/* Access units are pictures of people: out of core dumps (DESIGN.md invariant 1). The
	 * mapping is touched only as far as the largest access unit, not MAX_AU. */
	d->buf = mmap(NULL, max_au, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d->buf == MAP_FAILED) {
		free(d);
		return -ENOMEM;
	}
	madvise(d->buf, max_au, MADV_DONTDUMP);
	d->codec = codec;
	d->cap = max_au;
	d->emit = emit;
	d->arg = arg;
	*out = d;
	return 0;
}

void dp_depay_destroy(struct dp_depay **d)
{
	if (!*d)
		return;
	vg_scrub((*d)->buf, (*d)->high); /* only what was ever written: the rest was never touched */
	munmap((*d)->buf, (*d)->cap);
	free(*d);
	*d = NULL;
}

int dp_depay_set_prefix(struct dp_depay *d, const uint8_t *annexb, size_t len)
{
	if (len > sizeof(d->prefix) || d->codec == DP_CODEC_MJPEG)
		return -EINVAL;
	memcpy(d->prefix, annexb, len);
	d->prefix_len = len;
	d->prefix_sent = false;
	return 0;
}

bool dp_depay_room(struct dp_depay *d, size_t n)
{
	if (d->len + n > d->cap) {
		d->overflow = true;
		return false;
	}
	return true;
}

void dp_depay_append(struct dp_depay *d, const void *p, size_t n)
{
	if (!dp_depay_room(d, n))
		return;
	memcpy(d->buf + d->len, p, n);
	d->len += n;
	if (d->len > d->high)
		d->high = d->len;
}

static void emit_au(struct dp_depay *d)
{
	if (d->fu_active) {
		/* A fragmented NAL whose end never came: cut it off, keep the rest. */
		d->len = d->fu_start;
		d->fu_active = false;
		d->flags |= DP_AU_DAMAGED;
	}
	if (d->codec == DP_CODEC_MJPEG)
		dp_jpeg_finish(d);
	if (d->len > 0 && !d->overflow) {
		struct dp_au au = { .data = d->buf, .len = d->len, .ts = d->ts, .flags = d->flags };
		d->emit(d->arg, &au);
	}
	d->len = 0;
	d->flags = 0;
	d->in_au = false;
	d->overflow = false;
	d->jpeg_started = false;
}

void dp_depay_flush(struct dp_depay *d)
{
	if (d->in_au)
		emit_au(d);
}

/* ---- H.264 ------------------------------------------------------------------------------------ */

static void h264_nal(struct dp_depay *d, const uint8_t *nal, size_t n)
{
	unsigned type = nal[0] & 0x1f;

	if (type == 5)
		d->flags |= DP_AU_KEY;
	dp_depay_append(d, start_code, 4);
	dp_depay_append(d, nal, n);
}

static void drop_fu(struct dp_depay *d)
{
	if (d->fu_active) {
		d->len = d->fu_start;
		d->fu_active = false;
		d->flags |= DP_AU_DAMAGED;
	}
}

/* STAP-A / AP: [size16][unit]... after a header of HDR bytes; every size checked before any copy. */
static int aggregate(struct dp_depay *d, const uint8_t *p, size_t n, size_t hdr, size_t min_unit,
		     void (*unit)(struct dp_depay *, const uint8_t *, size_t))
{
	size_t off = hdr;
	unsigned units = 0;

	while (off < n) {
		if (off + 2 > n)
			return -EBADMSG;
		size_t sz = (size_t)p[off] << 8 | p[off + 1];
		if (sz < min_unit || off + 2 + sz > n)
			return -EBADMSG;
		off += 2 + sz;
		units++;
	}
	if (units == 0)
		return -EBADMSG;
	drop_fu(d);
	for (off = hdr; off < n;) {
		size_t sz = (size_t)p[off] << 8 | p[off + 1];
		unit(d, p + off + 2, sz);
		off += 2 + sz;
	}
	return 0;
}

static int h264_push(struct dp_depay *d, const uint8_t *p, size_t n)
{
	if (n < 1 || (p[0] & 0x80))
		return -EBADMSG;
	unsigned type = p[0] & 0x1f;

	if (type >= 1 && type <= 23) {
		drop_fu(d);
		h264_nal(d, p, n);
		return 0;
	}
	if (type == 24)
		return aggregate(d, p, n, 1, 1, h264_nal);
	if (type == 28) {
		if (n < 3)
			return -EBADMSG;
		bool s = p[1] & 0x80, e = p[1] & 0x40;
		uint8_t nal_hdr = (uint8_t)((p[0] & 0xe0) | (p[1] & 0x1f));
		if (s && e)
			return -EBADMSG; /* RFC 6184 5.8: start and end in one FU is not allowed */
		if (s) {
			drop_fu(d);
			d->fu_start = d->len;
			d->fu_active = true;
			if ((nal_hdr & 0x1f) == 5)
				d->flags |= DP_AU_KEY;
			dp_depay_append(d, start_code, 4);
			dp_depay_append(d, &nal_hdr, 1);
		} else if (!d->fu_active) {
			/* The rest of a NAL whose start was lost is loss, already counted; without a loss
			 * just before, a fragment whose start never came is malformed. */
			return d->fu_lost ? 0 : -EBADMSG;
		}
		dp_depay_append(d, p + 2, n - 2);
		if (e)
			d->fu_active = false;
		return 0;
	}
	/* 0, 30, 31 are reserved; STAP-B, MTAPs and FU-B belong to mode 2, which we do not offer. */
	return -EBADMSG;
}

/* ---- H.265 ------------------------------------------------------------------------------------ */

static void h265_nal(struct dp_depay *d, const uint8_t *nal, size_t n)
{
	unsigned type = (nal[0] >> 1) & 0x3f;

	if (type >= 16 && type <= 23)
		d->flags |= DP_AU_KEY;
	dp_depay_append(d, start_code, 4);
	dp_depay_append(d, nal, n);
}

static int h265_push(struct dp_depay *d, const uint8_t *p, size_t n)
{
	if (n < 3 || (p[0] & 0x80))
		return -EBADMSG;
	unsigned type = (p[0] >> 1) & 0x3f;

	if (type < 48) {
		drop_fu(d);
		h265_nal(d, p, n);
		return 0;
	}
	if (type == 48)
		return aggregate(d, p, n, 2, 2, h265_nal);
	if (type == 49) {
		bool s = p[2] & 0x80, e = p[2] & 0x40;
		unsigned fu_type = p[2] & 0x3f;
		uint8_t nal_hdr[2] = { (uint8_t)((p[0] & 0x81) | (fu_type << 1)), p[1] };
		if (s && e)
			return -EBADMSG;
		if (fu_type >= 48)
			return -EBADMSG;
		if (s) {
			drop_fu(d);
			d->fu_start = d->len;
			d->fu_active = true;
			if (fu_type >= 16 && fu_type <= 23)
				d->flags |= DP_AU_KEY;
			dp_depay_append(d, start_code, 4);
			dp_depay_append(d, nal_hdr, 2);
		} else if (!d->fu_active) {
			return d->fu_lost ? 0 : -EBADMSG;
		}
		dp_depay_append(d, p + 3, n - 3);
		if (e)
			d->fu_active = false;
		return 0;
	}
	return -EBADMSG; /* PACI (50) and reserved types */
}

static bool is_fu_continuation(const struct dp_depay *d, const struct dp_rtp_pkt *pkt)
{
	const uint8_t *p = pkt->payload;

	if (d->codec == DP_CODEC_H264)
		return pkt->payload_len >= 2 && (p[0] & 0x1f) == 28 && !(p[1] & 0x80);
	if (d->codec == DP_CODEC_H265)
		return pkt->payload_len >= 3 && ((p[0] >> 1) & 0x3f) == 49 && !(p[2] & 0x80);
	return false;
}

/* ---- common ------------------------------------------------------------------------------------ */

int dp_depay_push(struct dp_depay *d, const struct dp_rtp_pkt *pkt, uint32_t gap)
{
	int rc;

	if (d->in_au && pkt->ts != d->ts) {
		/* The marker of the last access unit was lost (or never sent): end it here. */
		if (gap)
			d->flags |= DP_AU_DAMAGED;
		emit_au(d);
	}
	if (gap) {
		d->flags |= DP_AU_DAMAGED;
		drop_fu(d);
		d->fu_lost = true;
	}
	if (!d->in_au) {
		d->in_au = true;
		d->ts = pkt->ts;
		if (d->prefix_len && !d->prefix_sent) {
			dp_depay_append(d, d->prefix, d->prefix_len);
			d->prefix_sent = true;
		}
	}
	bool was_overflow = d->overflow;
	switch (d->codec) {
	case DP_CODEC_H264:
		rc = h264_push(d, pkt->payload, pkt->payload_len);
		break;
	case DP_CODEC_H265:
		rc = h265_push(d, pkt->payload, pkt->payload_len);
		break;
	default:
		rc = dp_jpeg_push(d, pkt->payload, pkt->payload_len);
		break;
	}
	if (rc < 0)
		d->flags |= DP_AU_DAMAGED;
	if (d->fu_active || !is_fu_continuation(d, pkt))
		d->fu_lost = false;
	bool overflow = d->overflow;
	if (pkt->marker)
		emit_au(d);
	if (rc == 0 && overflow && !was_overflow)
		rc = -ENOBUFS;
	return rc;
}
