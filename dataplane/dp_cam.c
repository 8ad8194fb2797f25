/*
 * A camera from its flow to decoded frames: the flow table (destination port, SSRC), the reorder
 * buffer drained into the depacketizer, and each access unit decoded on the RX lcore or handed to
 * a decode worker (conf->decode_workers), camera i on worker i % n, in order.
 *
 * The reorder buffer holds the mbufs themselves; the parsed RTP header travels in the mbuf's
 * headroom (RTE_PKTMBUF_HEADROOM, 128 bytes, unused by RX), so a packet is parsed once.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <pthread.h>

#include "dp.h"
#include "dp_run_int.h"
#include "vg_base.h"
#include "vg_pool.h"

#define MAX_AU (4u << 20) /* a 4K intra frame at high quality stays under 4 MiB */
#define WORKER_RING 256
#define AU_POOL_ELT (2u << 20) /* an access unit handed to a decode worker; larger ones are dropped */
#define AU_POOL_COUNT 64

/* An access unit on its way to a decode worker, at the start of a pool buffer. */
struct au_msg {
	uint32_t cam, ts, flags, len;
	uint8_t data[];
};

static _Thread_local struct dp_cam *decoding; /* the camera whose AU this thread is decoding */

static _Thread_local unsigned current_camera;

unsigned dp_run_current_camera(void)
{
	return current_camera;
}

static void on_frame(void *arg, const struct dp_frame *f)
{
	struct dp_run *run = arg;
	struct dp_cam *c = decoding;

	c->rep->width = f->width;
	c->rep->height = f->height;
	if (run->conf->on_frame) {
		struct dp_frame out = *f;
		if (c->have_sr) {
			int64_t dt = (int32_t)(f->ts - c->sr.rtp_ts);
			uint64_t base = dp_ntp_to_unix_ns(c->sr.ntp);
			out.wall_ns = base ? base + (uint64_t)(dt * 1000000000ll / (int64_t)c->clock_rate) : 0;
		}
		current_camera = c->index;
		run->conf->on_frame(run->conf->on_frame_arg, &out);
	}
}

static void on_au(void *arg, const struct dp_au *au)
{
	struct dp_cam *c = arg;
	struct dp_run *run = c->run;

	if (!c->dec)
		return;
	if (!run->n_workers) {
		decoding = c;
		dp_decoder_push(c->dec, au);
		return;
	}
	/* Hand it to the camera's worker: a copy into a pool buffer (the depacketizer's buffer is
	 * reused for the next access unit at once). A full ring or an empty pool drops this, the
	 * newest, access unit, counted; a recorded run (until_eof) waits instead, so it replays the
	 * same way at any speed. */
	struct rte_ring *ring = run->rings[c->index % run->n_workers];
	struct au_msg *m;
	if (au->len > AU_POOL_ELT - sizeof(*m)) {
		c->rep->aus_dropped++;
		return;
	}
	while (!(m = vg_pool_get(run->au_pool))) {
		if (!run->conf->until_eof) {
			c->rep->aus_dropped++;
			return;
		}
		rte_pause();
	}
	*m = (struct au_msg){ .cam = c->index, .ts = au->ts, .flags = au->flags, .len = (uint32_t)au->len };
	memcpy(m->data, au->data, au->len);
	while (rte_ring_enqueue(ring, m) != 0) {
		if (!run->conf->until_eof) {
			vg_pool_put(run->au_pool, m);
			c->rep->aus_dropped++;
			return;
		}
		rte_pause();
	}
}

struct worker_arg {
	struct dp_run *run;
	unsigned index;
};
static struct worker_arg worker_args[MAX_WORKERS];

/* A decode worker: drains its ring until told to stop and the ring is empty. */
static void *worker_main(void *arg)
{
	const struct worker_arg *wa = arg;
	struct dp_run *run = wa->run;
	struct rte_ring *ring = run->rings[wa->index];

	for (;;) {
		void *burst[8];
		unsigned n = rte_ring_dequeue_burst(ring, burst, 8, NULL);
		if (n == 0) {
			if (atomic_load_explicit(&run->workers_stop, memory_order_acquire) && rte_ring_empty(ring))
				break;
			usleep(50); /* idle: a worker is not a busy-polling lcore */
			continue;
		}
		for (unsigned i = 0; i < n; i++) {
			struct au_msg *m = burst[i];
			struct dp_cam *c = &run->cams[m->cam];
			struct dp_au au = { .data = m->data, .len = m->len, .ts = m->ts, .flags = m->flags };
			decoding = c;
			dp_decoder_push(c->dec, &au);
			vg_pool_put(run->au_pool, m);
		}
	}
	return NULL;
}

int dp_cam_workers_start(struct dp_run *run, unsigned n, char *err, size_t errlen)
{
	int rc = vg_pool_create(&run->au_pool, "dp_au", AU_POOL_ELT, AU_POOL_COUNT, VG_POOL_BIOMETRIC);

	if (rc < 0)
		return vg_errf(err, errlen, rc, "access-unit pool: %s", vg_strerror(rc));
	for (unsigned i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "dp_dec%u", i);
		/* HTS mode: its head/tail updates are C11 atomics, which ThreadSanitizer can follow (the
		 * default x86 ring's plain stores behind compiler barriers read as races to it). One
		 * producer and one consumer per ring, so the serialisation HTS adds costs nothing here. */
		run->rings[i] = rte_ring_create(name, WORKER_RING, (int)rte_socket_id(),
						RING_F_MP_HTS_ENQ | RING_F_MC_HTS_DEQ);
		if (!run->rings[i])
			return vg_errf(err, errlen, -ENOMEM, "decode ring: %s", rte_strerror(rte_errno));
		worker_args[i] = (struct worker_arg){ run, i };
		rc = -pthread_create(&run->workers[i], NULL, worker_main, &worker_args[i]);
		if (rc < 0)
			return vg_errf(err, errlen, rc, "decode worker: %s", vg_strerror(rc));
		run->n_workers = i + 1;
	}
	return 0;
}

/* Let the workers drain their rings, join them, free what they used. */
void dp_cam_workers_stop(struct dp_run *run)
{
	atomic_store_explicit(&run->workers_stop, true, memory_order_release);
	for (unsigned i = 0; i < run->n_workers; i++)
		pthread_join(run->workers[i], NULL);
	for (unsigned i = 0; i < MAX_WORKERS; i++) {
		rte_ring_free(run->rings[i]);
		run->rings[i] = NULL;
	}
	run->n_workers = 0;
	if (run->au_pool)
		vg_pool_destroy(&run->au_pool);
}

int dp_cam_add(struct dp_run *run, enum dp_codec codec, uint16_t port, uint8_t pt, const uint8_t *params,
	       size_t params_len, char *err, size_t errlen)
{
	struct dp_cam *c;
	int rc;

	if (run->n_cams >= DP_MAX_CAMERAS)
		return -ENOSPC;
	c = &run->cams[run->n_cams];
	c->index = run->n_cams;
	c->run = run;
	c->rep = &run->rep->cameras[run->n_cams];
	memset(c->rep, 0, sizeof(*c->rep));
	snprintf(c->rep->id, sizeof(c->rep->id), "cam%u", run->n_cams + 1);
	c->rep->dst_port = port;
	c->rep->codec = codec;
	c->pt = pt;
	c->clock_rate = 90000;
	rc = dp_reorder_create(&c->ro, &run->conf->reorder);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "reorder buffer: %s", vg_strerror(rc));
	rc = dp_depay_create(&c->depay, codec, MAX_AU, on_au, c);
	if (rc < 0)
		goto out_free_ro;
	if (params_len)
		dp_depay_set_prefix(c->depay, params, params_len);
	if (run->conf->decode) {
		struct dp_decoder_conf dconf = { .codec = codec,
						 .cuda = run->conf->decode_cuda,
						 .cuda_device = run->conf->cuda_device,
						 .frames_held = run->conf->frames_held };
		rc = dp_decoder_open(&c->dec, &dconf, on_frame, run);
		if (rc < 0)
			goto out_free_depay;
	}
	c->next_same_port = run->by_port[port];
	run->by_port[port] = (int16_t)run->n_cams;
	run->n_cams++;
	run->rep->n_cameras = run->n_cams;
	return 0;
out_free_depay:
	dp_depay_destroy(&c->depay);
out_free_ro:
	dp_reorder_destroy(&c->ro);
	return vg_errf(err, errlen, rc, "camera on port %u: decoder for %s: %s", port, dp_codec_name(codec),
		       vg_strerror(rc));
}

void dp_cam_drain(struct dp_cam *c, bool flush)
{
	struct rte_mbuf *m;
	uint32_t gap;

	while ((m = dp_reorder_pop(c->ro, flush, &gap))) {
		const struct dp_rtp_pkt *rtp = (const struct dp_rtp_pkt *)((char *)m->buf_addr);
		if (dp_depay_push(c->depay, rtp, gap) < 0)
			c->rep->malformed++;
		rte_pktmbuf_free(m);
	}
}

struct dp_cam *dp_cam_find(struct dp_run *run, uint16_t port, uint32_t ssrc, uint8_t pt)
{
	int i = run->by_port[port];

	if (run->conf->sdp) {
		if (i < 0)
			return NULL;
		struct dp_cam *c = &run->cams[i];
		if (c->ssrc_known && c->rep->ssrc != ssrc) {
			/* A new SSRC on a camera's port: the camera restarted its stream. */
			dp_cam_drain(c, true);
			dp_depay_flush(c->depay);
			struct dp_rtp_stats keep = *dp_reorder_stats(c->ro);
			dp_reorder_destroy(&c->ro);
			if (dp_reorder_create(&c->ro, &run->conf->reorder) < 0)
				return NULL;
			c->rep->rtp.packets += keep.packets;
			c->rep->rtp.lost += keep.lost;
			c->rep->rtp.reordered += keep.reordered;
			c->rep->rtp.duplicates += keep.duplicates;
			c->rep->rtp.late += keep.late;
			c->rep->rtp.resyncs += keep.resyncs + 1;
		}
		if (c->have_sr && c->sr.ssrc != ssrc)
			c->have_sr = false; /* that report was someone else's */
		c->ssrc_known = true;
		c->rep->ssrc = ssrc;
		return c;
	}
	for (; i >= 0; i = run->cams[i].next_same_port)
		if (run->cams[i].rep->ssrc == ssrc)
			return &run->cams[i];
	/* No SDP: a new (port, SSRC) is a new camera; PT 26 is JPEG (RFC 3551), dynamic ones H.264. */
	if (dp_cam_add(run, pt == 26 ? DP_CODEC_MJPEG : DP_CODEC_H264, port, pt, NULL, 0, NULL, 0) < 0)
		return NULL;
	struct dp_cam *c = &run->cams[run->n_cams - 1];
	c->rep->ssrc = ssrc;
	c->ssrc_known = true;
	return c;
}

void dp_cam_decode_flush(struct dp_cam *c)
{
	if (c->dec) {
		decoding = c;
		dp_decoder_flush(c->dec);
	}
}

void dp_cam_close(struct dp_cam *c, struct dp_run_report *report)
{
	if (c->ro) {
		const struct dp_rtp_stats *s = dp_reorder_stats(c->ro);
		c->rep->rtp.packets += s->packets;
		c->rep->rtp.lost += s->lost;
		c->rep->rtp.reordered += s->reordered;
		c->rep->rtp.duplicates += s->duplicates;
		c->rep->rtp.late += s->late;
		c->rep->rtp.resyncs += s->resyncs;
	}
	if (c->dec) {
		const struct dp_decode_stats *ds = dp_decoder_stats(c->dec);
		c->rep->frames_decoded = ds->frames;
		c->rep->frames_corrupt = ds->corrupt;
		c->rep->nvdec = dp_decoder_on_device(c->dec);
		c->rep->frames_on_device = ds->frames_on_device;
		c->rep->decode_hw_errors = ds->hw_errors;
		c->rep->decode_fallbacks = ds->fallbacks;
		snprintf(c->rep->decode_fallback, sizeof(c->rep->decode_fallback), "%s",
			 dp_decoder_fallback(c->dec));
		report->decode_aus += ds->aus;
		report->decode_errors += ds->errors;
		report->decode_frames_on_device += ds->frames_on_device;
		report->decode_hw_errors += ds->hw_errors;
		report->decode_fallbacks += ds->fallbacks ? 1 : 0;
	}
	dp_decoder_destroy(&c->dec);
	dp_depay_destroy(&c->depay);
	dp_reorder_destroy(&c->ro);
}
