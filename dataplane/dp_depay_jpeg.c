/*
 * MJPEG over RTP (RFC 2435) rebuilt into a baseline JFIF frame: the RTP headers carry only the
 * type (4:2:2 or 4:2:0), Q, the size in 8-pixel blocks, restart markers and (Q >= 128) the
 * quantisation tables; the frame's DQT, SOF0, DHT (JPEG Annex K's standard tables, which
 * RFC 2435 mandates), DRI and SOS segments are written here in front of the scan bytes.
 */
#include <errno.h>
#include <string.h>

#include "dp_int.h"

/* RFC 2435 Appendix A, in zig-zag order. */
static const uint8_t jpeg_luma_quantizer[64] = {
	16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
	26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
	56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
	95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
};
static const uint8_t jpeg_chroma_quantizer[64] = {
	17, 18, 18, 24, 21, 24, 47, 26, 26, 47, 99, 66, 56, 66, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
};

/* JPEG Annex K.3: code counts per length 1..16, then the symbols. */
static const uint8_t dc_luma_bits[16] = { 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
static const uint8_t dc_chroma_bits[16] = { 0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0 };
static const uint8_t dc_vals[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
static const uint8_t ac_luma_bits[16] = { 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d };
static const uint8_t ac_luma_vals[162] = {
	0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
	0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
	0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
	0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
	0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
	0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
	0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
	0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
	0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
	0xf9, 0xfa,
};
static const uint8_t ac_chroma_bits[16] = { 0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77 };
static const uint8_t ac_chroma_vals[162] = {
	0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
	0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
	0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
	0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
	0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
	0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
	0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
	0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
	0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
	0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
	0xf9, 0xfa,
};

/* RFC 2435 Appendix A MakeTables(): the tables a Q of 1..99 stands for. */
static void make_tables(int q, uint8_t out[128])
{
	int factor = q < 1 ? 1 : q > 99 ? 99 : q;
	int scale = factor < 50 ? 5000 / factor : 200 - factor * 2;

	for (int i = 0; i < 64; i++) {
		int lq = (jpeg_luma_quantizer[i] * scale + 50) / 100;
		int cq = (jpeg_chroma_quantizer[i] * scale + 50) / 100;
		out[i] = (uint8_t)(lq < 1 ? 1 : lq > 255 ? 255 : lq);
		out[64 + i] = (uint8_t)(cq < 1 ? 1 : cq > 255 ? 255 : cq);
	}
}

static void put16(struct dp_depay *d, unsigned v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	dp_depay_append(d, b, 2);
}

static void put_dht(struct dp_depay *d, uint8_t cls_id, const uint8_t bits[16], const uint8_t *vals, size_t nvals)
{
	dp_depay_append(d, &cls_id, 1);
	dp_depay_append(d, bits, 16);
	dp_depay_append(d, vals, nvals);
}

static void write_headers(struct dp_depay *d, unsigned type, unsigned w, unsigned h, unsigned dri,
			  const uint8_t *qt, unsigned nqt)
{
	static const uint8_t soi_app0[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0 };
	uint8_t b[2];

	dp_depay_append(d, soi_app0, sizeof(soi_app0));
	b[0] = 0xff, b[1] = 0xdb;
	dp_depay_append(d, b, 2);
	put16(d, 2 + nqt * 65);
	for (unsigned i = 0; i < nqt; i++) {
		b[0] = (uint8_t)i;
		dp_depay_append(d, b, 1);
		dp_depay_append(d, qt + 64 * i, 64);
	}
	uint8_t cq = nqt > 1 ? 1 : 0;
	uint8_t sof[] = { 0xff, 0xc0, 0, 17, 8, (uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w, 3,
			  1, type == 0 ? 0x21 : 0x22, 0, 2, 0x11, cq, 3, 0x11, cq };
	dp_depay_append(d, sof, sizeof(sof));
	b[0] = 0xff, b[1] = 0xc4;
	dp_depay_append(d, b, 2);
	put16(d, 2 + 4 * 17 + 12 + 162 + 12 + 162);
	put_dht(d, 0x00, dc_luma_bits, dc_vals, 12);
	put_dht(d, 0x10, ac_luma_bits, ac_luma_vals, 162);
	put_dht(d, 0x01, dc_chroma_bits, dc_vals, 12);
	put_dht(d, 0x11, ac_chroma_bits, ac_chroma_vals, 162);
	if (dri) {
		uint8_t r[] = { 0xff, 0xdd, 0, 4, (uint8_t)(dri >> 8), (uint8_t)dri };
		dp_depay_append(d, r, sizeof(r));
	}
	static const uint8_t sos[] = { 0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0 };
	dp_depay_append(d, sos, sizeof(sos));
}

int dp_jpeg_push(struct dp_depay *d, const uint8_t *p, size_t n)
{
	size_t hdr = 8;
	unsigned dri = 0;

	if (n < 8)
		return -EBADMSG;
	uint32_t off = (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	unsigned type = p[4], q = p[5], w = p[6] * 8u, h = p[7] * 8u;

	if (w == 0 || h == 0)
		return -EBADMSG;
	if (type >= 64 && type <= 127) {
		if (n < hdr + 4)
			return -EBADMSG;
		dri = (unsigned)p[8] << 8 | p[9];
		hdr += 4;
		type -= 64;
	}
	if (type > 1)
		return -EBADMSG; /* only the two types RFC 2435 defines */
	if (off == 0) {
		uint8_t made[128];
		const uint8_t *qt = made;
		unsigned nqt = 2;

		if (q >= 128) {
			if (n < hdr + 4)
				return -EBADMSG;
			unsigned prec = p[hdr + 1], qlen = (unsigned)p[hdr + 2] << 8 | p[hdr + 3];
			hdr += 4;
			if (prec != 0 || (qlen != 0 && qlen != 64 && qlen != 128) || n < hdr + qlen)
				return -EBADMSG; /* 16-bit tables are not baseline */
			if (qlen) {
				memcpy(d->jpeg_qt, p + hdr, qlen);
				d->jpeg_qt_len = qlen;
				d->jpeg_qt_q = (int)q;
				hdr += qlen;
			} else if (q == 255 || d->jpeg_qt_q != (int)q) {
				return -EBADMSG; /* Q 255 must carry its tables; 128..254 may reuse the last */
			}
			qt = d->jpeg_qt;
			nqt = d->jpeg_qt_len / 64;
		} else {
			make_tables((int)q, made);
		}
		if (d->jpeg_started) {
			/* A second first fragment for the same timestamp: restart the frame. */
			d->len = 0;
			d->flags |= DP_AU_DAMAGED;
		}
		write_headers(d, type, w, h, dri, qt, nqt);
		d->jpeg_started = true;
		d->jpeg_next_off = 0;
		d->flags |= DP_AU_KEY; /* every JPEG frame stands alone */
	} else if (!d->jpeg_started) {
		d->flags |= DP_AU_DAMAGED; /* the frame's first fragment was lost: nothing to build on */
		return 0;
	}
	if (off < d->jpeg_next_off)
		return -EBADMSG; /* overlapping fragments */
	if (off > d->jpeg_next_off)
		d->flags |= DP_AU_DAMAGED;
	dp_depay_append(d, p + hdr, n - hdr);
	d->jpeg_next_off = off + (uint32_t)(n - hdr);
	return 0;
}

void dp_jpeg_finish(struct dp_depay *d)
{
	static const uint8_t eoi[2] = { 0xff, 0xd9 };

	if (!d->jpeg_started) {
		d->len = 0;
		return;
	}
	if (d->len < 2 || d->buf[d->len - 2] != 0xff || d->buf[d->len - 1] != 0xd9)
		dp_depay_append(d, eoi, 2);
}
