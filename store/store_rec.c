/*
 * The on-disk format (store_int.h): encoding, checking and the segment scanner that recovery
 * runs and the fuzz target feeds. Pure functions over memory: no I/O, no allocation.
 */
#include <errno.h>
#include <string.h>

#include "store.h"
#include "store_int.h"

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- crc32c (Castagnoli) ---------------------------------------------------------------------
 * SSE4.2's crc32 instruction where the CPU has it (8 bytes per instruction: about 4 us for a
 * 30 KB record on this VM), else a table, one byte per step. */
static uint32_t crc_table[256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	if (!crc_table[1])
		crc_table_init(); /* idempotent: racing threads write the same values */
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t store_crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(crc, buf, len);
#endif
	return ~crc_sw(crc, buf, len);
}

/* ---- records --------------------------------------------------------------------------------- */
static void rec_hdr_write(uint8_t *out, const struct store_rec_hdr *h)
{
	put32(out, STORE_REC_MAGIC);
	put16(out + 4, h->version);
	out[6] = h->type;
	out[7] = h->cipher;
	put32(out + 8, h->len);
	put32(out + 12, 0);
	put64(out + 16, h->seq);
	put64(out + 24, h->deployment);
	put64(out + 32, h->time_ns);
	memcpy(out + 40, h->nonce, STORE_NONCE);
	put32(out + 64, 0);
	put32(out + 68, 0);
}

void store_rec_hdr_encode(uint8_t *out, const struct store_rec_hdr *h, const uint8_t *payload)
{
	uint32_t crc;

	rec_hdr_write(out, h);
	put32(out + 12, store_crc32c(0, out, STORE_REC_HDR));
	crc = store_crc32c(0, out, STORE_REC_HDR);
	crc = store_crc32c(crc, payload, h->len);
	put32(out + 64, crc);
}

int store_rec_hdr_decode(const uint8_t *in, struct store_rec_hdr *h)
{
	uint8_t tmp[STORE_REC_HDR];
	struct store_rec_hdr d;

	if (get32(in) != STORE_REC_MAGIC || get16(in + 4) != STORE_VERSION)
		return -EBADMSG;
	memcpy(tmp, in, STORE_REC_HDR);
	put32(tmp + 12, 0);
	put32(tmp + 64, 0);
	if (store_crc32c(0, tmp, STORE_REC_HDR) != get32(in + 12))
		return -EBADMSG;
	d.version = get16(in + 4);
	d.type = in[6];
	d.cipher = in[7];
	d.len = get32(in + 8);
	d.seq = get64(in + 16);
	d.deployment = get64(in + 24);
	d.time_ns = get64(in + 32);
	memcpy(d.nonce, in + 40, STORE_NONCE);
	if (d.len > STORE_REC_MAX_LEN || d.type < STORE_REC_EVIDENCE || d.type > STORE_REC_DELETE)
		return -EBADMSG;
	*h = d;
	return 0;
}

bool store_rec_crc_ok(const uint8_t *rec, uint32_t len)
{
	uint8_t tmp[STORE_REC_HDR];
	uint32_t crc;

	memcpy(tmp, rec, STORE_REC_HDR);
	put32(tmp + 64, 0);
	crc = store_crc32c(0, tmp, STORE_REC_HDR);
	crc = store_crc32c(crc, rec + STORE_REC_HDR, len);
	return crc == get32(rec + 64);
}

/* ---- segments -------------------------------------------------------------------------------- */
void store_seg_hdr_encode(uint8_t *out, const struct store_seg_hdr *h)
{
	memset(out, 0, STORE_SEG_HDR);
	put32(out, STORE_SEG_MAGIC);
	put16(out + 4, STORE_VERSION);
	out[6] = h->align_log2;
	out[7] = h->kind;
	put64(out + 8, h->deployment);
	put32(out + 16, h->segment);
	put64(out + 24, h->created_ns);
	put32(out + 60, store_crc32c(0, out, 60));
}

int store_seg_hdr_decode(const uint8_t *in, size_t len, struct store_seg_hdr *h)
{
	if (len < STORE_SEG_HDR || get32(in) != STORE_SEG_MAGIC || get16(in + 4) != STORE_VERSION ||
	    store_crc32c(0, in, 60) != get32(in + 60))
		return -EBADMSG;
	if ((in[6] != 3 && in[6] != 12) || (in[7] != STORE_SEG_EVIDENCE && in[7] != STORE_SEG_META))
		return -EBADMSG;
	h->align_log2 = in[6];
	h->kind = in[7];
	h->deployment = get64(in + 8);
	h->segment = get32(in + 16);
	h->created_ns = get64(in + 24);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int store_seg_scan(const uint8_t *buf, size_t len, store_scan_fn *fn, void *arg, struct store_seg_hdr *seg,
		   struct store_scan_result *res)
{
	struct store_seg_hdr sh;
	struct store_scan_result r = { 0 };
	uint64_t align, off;

	if (store_seg_hdr_decode(buf, len, &sh) < 0)
		return -EBADMSG;
	align = 1ull << sh.align_log2;
	off = store_align_up(STORE_SEG_HDR, align);
	if (off > len)
		return -EBADMSG; /* the padded header itself is cut short: a torn creation */
	r.valid_end = off;
	while (off < len) {
		struct store_rec_hdr h;
		uint64_t total;

		if (len - off < STORE_REC_HDR || store_rec_hdr_decode(buf + off, &h) < 0) {
			/* A damaged or torn header. Zeros to the end are a clean end (pre-allocated or
			 * hole-punched space); otherwise look for the next sound header, so that one
			 * flipped bit does not hide every acknowledged record after it. */
			uint64_t p;

			if (all_zero(buf + off, len - off))
				break;
			for (p = off + align; p + STORE_REC_HDR <= len; p += align)
				if (store_rec_hdr_decode(buf + p, &h) == 0 && p + STORE_REC_HDR + h.len <= len)
					break;
			if (p + STORE_REC_HDR > len)
				break; /* nothing sound after it: a torn tail */
			r.resynced_bytes += p - off;
			off = p;
			continue;
		}
		if (h.len > len - off - STORE_REC_HDR)
			break; /* the record runs past the end: torn */
		total = store_align_up(STORE_REC_HDR + (uint64_t)h.len, align);
		if (store_rec_crc_ok(buf + off, h.len)) {
			r.n_ok++;
			if (fn)
				fn(arg, STORE_SCAN_OK, off, &h, buf + off + STORE_REC_HDR);
		} else {
			r.n_corrupt++;
			if (fn)
				fn(arg, STORE_SCAN_CORRUPT, off, &h, buf + off + STORE_REC_HDR);
		}
		off += total;
		if (off > len)
			off = len; /* padding cut short at the very end: the record itself is whole */
		r.valid_end = off;
	}
	r.torn_bytes = len - r.valid_end;
	*seg = sh;
	*res = r;
	return 0;
}

/* ---- the alert record --------------------------------------------------------------------------- */
static void put_str(uint8_t *p, const char *s, size_t n)
{
	size_t l = strnlen(s, n - 1);

	memset(p, 0, n);
	memcpy(p, s, l);
}

static void get_str(char *s, const uint8_t *p, size_t n)
{
	memcpy(s, p, n);
	s[n - 1] = 0;
}

static void put_f32(uint8_t *p, float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	put32(p, v);
}

static float get_f32(const uint8_t *p)
{
	uint32_t v = get32(p);
	float f;
	memcpy(&f, &v, 4);
	return f;
}

void store_alert_encode(uint8_t *o, const struct store_alert *a)
{
	put64(o, a->deployment);
	put64(o + 8, a->time_ns);
	put64(o + 16, a->track);
	put64(o + 24, (uint64_t)a->pts);
	put_str(o + 32, a->camera, 32);
	put_str(o + 64, a->subject, 64);
	put_str(o + 128, a->watchlist, 64);
	put_str(o + 192, a->metric, 16);
	put_str(o + 208, a->model, 48);
	put_f32(o + 256, a->value);
	put_f32(o + 260, a->threshold);
	for (int i = 0; i < 4; i++) {
		put32(o + 264 + 4 * i, (uint32_t)a->box[i]);
		put_f32(o + 280 + 4 * i, a->quality[i]);
	}
}

void store_alert_decode(const uint8_t *in, struct store_alert *a)
{
	a->deployment = get64(in);
	a->time_ns = get64(in + 8);
	a->track = get64(in + 16);
	a->pts = (int64_t)get64(in + 24);
	get_str(a->camera, in + 32, 32);
	get_str(a->subject, in + 64, 64);
	get_str(a->watchlist, in + 128, 64);
	get_str(a->metric, in + 192, 16);
	get_str(a->model, in + 208, 48);
	a->value = get_f32(in + 256);
	a->threshold = get_f32(in + 260);
	for (int i = 0; i < 4; i++) {
		a->box[i] = (int32_t)get32(in + 264 + 4 * i);
		a->quality[i] = get_f32(in + 280 + 4 * i);
	}
}
