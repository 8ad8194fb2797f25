/*
 * camera.probe for vigild serve (mgmt.h mgmt_probe_fn): a short look at one camera with the
 * dataplane's own parts. RTSP (dp_rtsp) sets up unicast RTP, which for a probe arrives on a
 * plain UDP socket: the probe is not the data path (that is DPDK's, in vigild run), it only asks
 * the camera what it sends. The packets go through the same reorder buffer, depacketizer and
 * decoder as the data path, so the codec, resolution (from the first decoded picture, i.e. the
 * SPS as libavcodec read it), frame rate (from the access units' RTP timestamps) and loss are
 * what the pipeline would see.
 *
 * It runs inside vigild because only vigild can unseal the camera's credentials; it holds the
 * control socket for its duration (at most 10 s of listening, mgmt_camera.c, after an RTSP
 * exchange of four requests, 3 s each at most), a known cost of a diagnostic.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp.h"
#include "mgmt.h"
#include "vigild_int.h"
#include "vg_base.h"
#include "vg_clock.h"


#define PROBE_SLOTS 256         /* reorder slots; a buffer each, plus the one being received */
#define PROBE_PKT_MAX 2048      /* an RTP packet over UDP on an ordinary MTU */
#define PROBE_AU_MAX (4u << 20) /* a 4K key frame fits */

struct probe_pkt {
	uint8_t data[PROBE_PKT_MAX];
	size_t len;
};

struct probe {
	struct probe_pkt *pkts;
	struct probe_pkt *free_list[PROBE_SLOTS + 1];
	unsigned n_free;
	struct dp_decoder *dec;
	struct dp_depay *depay;
	struct mgmt_probe_result *out;
	uint64_t aus;
	uint32_t first_ts, last_ts;
	uint64_t ts_span; /* RTP ticks from the first access unit to the last, across wraps */
};

static void on_frame(void *arg, const struct dp_frame *f)
{
	struct probe *p = arg;

	if (!p->out->width && !f->corrupt) {
		p->out->width = f->width;
		p->out->height = f->height;
	}
	p->out->frames++;
}

static void on_au(void *arg, const struct dp_au *au)
{
	struct probe *p = arg;

	if (p->aus == 0)
		p->first_ts = au->ts;
	else
		p->ts_span += (uint32_t)(au->ts - p->last_ts);
	p->last_ts = au->ts;
	p->aus++;
	dp_decoder_push(p->dec, au); /* a refusal is counted by the decoder; the probe goes on */
}

/* An even UDP port for RTP with the odd one above it for RTCP, both ours, on any address. */
static int bind_pair(int *rtp, int *rtcp, uint16_t *port)
{
	for (int attempt = 0; attempt < 64; attempt++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
		socklen_t alen = sizeof(a);
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), fd2;

		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
			close(fd);
			return -errno;
		}
		uint16_t p = ntohs(a.sin_port);
		if (p % 2 == 0 && p < 65534) {
			fd2 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			a.sin_port = htons((uint16_t)(p + 1));
			if (fd2 >= 0 && bind(fd2, (struct sockaddr *)&a, sizeof(a)) == 0) {
				*rtp = fd;
				*rtcp = fd2;
				*port = p;
				return 0;
			}
			if (fd2 >= 0)
				close(fd2);
		}
		close(fd);
	}
	return -EADDRINUSE;
}

/* Hand the packets the reorder buffer releases, in order, to the depacketizer. */
static void drain(struct probe *p, struct dp_reorder *r, bool flush)
{
	struct probe_pkt *k;
	uint32_t gap;

	while ((k = dp_reorder_pop(r, flush, &gap))) {
		struct dp_rtp_pkt pkt;

		if (dp_rtp_parse(k->data, k->len, &pkt) == 0)
			dp_depay_push(p->depay, &pkt, gap); /* malformed payloads are the depacketizer's to count */
		p->free_list[p->n_free++] = k;
	}
}

int vigild_camera_probe(const char *url, const char *user, const char *password, unsigned seconds,
			struct mgmt_probe_result *out, char *err, size_t errlen)
{
	struct probe p = { .out = out };
	struct dp_rtsp *rtsp = NULL;
	struct dp_reorder *reorder = NULL;
	int rtp = -1, rtcp = -1, rc;
	uint16_t port = 0;
	uint32_t ssrc = 0;
	bool have_ssrc = false;

	memset(out, 0, sizeof(*out));
	rc = bind_pair(&rtp, &rtcp, &port);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "no UDP port for the probe's RTP: %s", vg_strerror(rc));
	struct dp_rtsp_conf rc_conf = { .url = url, .user = user[0] ? user : NULL, .password = password[0] ? password : NULL,
					.client_port = port, .timeout_ms = 3000 };
	rc = dp_rtsp_open(&rtsp, &rc_conf, err, errlen); /* ERR never holds the credentials (dp.h) */
	if (rc < 0)
		goto out_close_sockets;
	const struct dp_sdp *sdp = dp_rtsp_sdp(rtsp);
	if (sdp->n_media == 0) {
		rc = vg_errf(err, errlen, -ENOMEDIUM, "the camera describes no H.264, H.265 or MJPEG video stream");
		goto out_close_rtsp;
	}
	const struct dp_sdp_media *m = &sdp->media[0];
	snprintf(out->codec, sizeof(out->codec), "%s", dp_codec_name(m->codec));
	out->streams = sdp->n_media;

	struct dp_reorder_conf roc = { .slots = PROBE_SLOTS, .max_held = PROBE_SLOTS / 2, .window_ms = 200,
				       .clock_rate = m->clock_rate ? m->clock_rate : 90000 };
	p.pkts = calloc(PROBE_SLOTS + 1, sizeof(*p.pkts));
	if (!p.pkts) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_close_rtsp;
	}
	for (unsigned i = 0; i <= PROBE_SLOTS; i++)
		p.free_list[p.n_free++] = &p.pkts[i];
	if ((rc = dp_reorder_create(&reorder, &roc)) < 0 || (rc = dp_decoder_create(&p.dec, m->codec, on_frame, &p)) < 0 ||
	    (rc = dp_depay_create(&p.depay, m->codec, PROBE_AU_MAX, on_au, &p)) < 0 ||
	    (m->params_len && (rc = dp_depay_set_prefix(p.depay, m->params, m->params_len)) < 0)) {
		vg_errf(err, errlen, rc, "cannot set up the probe's decoder: %s", vg_strerror(rc));
		goto out_free_stages;
	}

	uint64_t start = vg_clock_ns(), end = start + (uint64_t)seconds * VG_NS_PER_SEC, now;
	while ((now = vg_clock_ns()) < end) {
		struct pollfd pfd = { .fd = rtp, .events = POLLIN };
		int ms = (int)((end - now) / VG_NS_PER_MS) + 1;

		if (poll(&pfd, 1, ms > 100 ? 100 : ms) <= 0)
			continue;
		struct probe_pkt *k = p.free_list[--p.n_free];
		ssize_t got = recv(rtp, k->data, sizeof(k->data), 0);
		struct dp_rtp_pkt pkt;

		/* Only the described stream counts: its payload type, and the first SSRC seen. */
		if (got <= 0 || dp_rtp_parse(k->data, (size_t)got, &pkt) < 0 || pkt.pt != m->pt ||
		    (have_ssrc && pkt.ssrc != ssrc)) {
			p.free_list[p.n_free++] = k;
			continue;
		}
		ssrc = pkt.ssrc;
		have_ssrc = true;
		k->len = (size_t)got;
		if (dp_reorder_push(reorder, pkt.seq, pkt.ts, k) < 0)
			p.free_list[p.n_free++] = k; /* duplicate or late: counted, ours again */
		drain(&p, reorder, false);
	}
	drain(&p, reorder, true);
	dp_depay_flush(p.depay);
	dp_decoder_flush(p.dec);
	out->seconds = (double)(vg_clock_ns() - start) / 1e9;

	const struct dp_rtp_stats *s = dp_reorder_stats(reorder);
	out->packets = s->packets;
	out->lost = s->lost;
	out->reordered = s->reordered;
	out->duplicates = s->duplicates;
	if (p.aus > 1 && p.ts_span)
		out->fps = (double)(p.aus - 1) * roc.clock_rate / (double)p.ts_span;
	rc = 0;
	if (out->packets == 0)
		rc = vg_errf(err, errlen, -ETIMEDOUT, "no RTP arrived in %u s (is UDP from the camera blocked?)", seconds);

out_free_stages:
	dp_depay_destroy(&p.depay);
	dp_decoder_destroy(&p.dec);
	dp_reorder_destroy(&reorder);
	free(p.pkts);
out_close_rtsp:
	dp_rtsp_close(&rtsp);
out_close_sockets:
	close(rtp);
	close(rtcp);
	return rc;
}
