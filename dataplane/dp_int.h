/* The dataplane's private layouts: the depacketizer state shared by dp_depay.c and dp_depay_jpeg.c. */
#ifndef DP_INT_H
#define DP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp.h"

struct dp_depay {
	enum dp_codec codec;
	uint8_t *buf; /* the access unit being built, cap bytes */
	size_t cap, len;
	size_t high; /* the most of buf ever written, to scrub at destroy */
	bool in_au;
	bool overflow;
	uint32_t ts;
	unsigned flags;
	dp_au_fn *emit;
	void *arg;
	/* H.264/H.265: a fragmented NAL in progress starts at buf[fu_start]. */
	bool fu_active;
	bool fu_lost; /* packets were lost since the last FU start: orphan fragments are loss */
	size_t fu_start;
	uint8_t prefix[512];
	size_t prefix_len;
	bool prefix_sent;
	/* MJPEG: the frame's headers are written at offset 0; scan bytes follow at jpeg_data. */
	bool jpeg_started;
	size_t jpeg_data;
	uint32_t jpeg_next_off;
	uint8_t jpeg_qt[128]; /* the last in-band tables (Q 128..255) and their Q */
	unsigned jpeg_qt_len;
	int jpeg_qt_q;
};

bool dp_depay_room(struct dp_depay *d, size_t n);
void dp_depay_append(struct dp_depay *d, const void *p, size_t n);
int dp_jpeg_push(struct dp_depay *d, const uint8_t *p, size_t n);
void dp_jpeg_finish(struct dp_depay *d);

#endif /* DP_INT_H */
