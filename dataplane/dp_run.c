/*
 * The receive loop: DPDK EAL with --no-huge, one net_pcap port per capture, and on this lcore
 * the whole graph per burst: Ethernet/IP/UDP parse -> flow table (destination port, SSRC) ->
 * RTP validation -> reorder -> depacketize -> decode. Every drop is a counter, never a log line.
 *
 * The reorder buffer holds the mbufs themselves; the parsed RTP header travels in the mbuf's
 * headroom (RTE_PKTMBUF_HEADROOM, 128 bytes, unused by RX), so a packet is parsed once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <pthread.h>

#include "dp.h"
#include "vg_base.h"
#include "vg_counter.h"
#include "vg_log.h"
#include "vg_pool.h"

/* The RX stage's counters (exported by mgmt as vigil_dp_rx_<name>); one row per RX lcore. */
#define DP_RX_COUNTERS(X, P)                                              \
	X(P, frames, "Ethernet frames received")                          \
	X(P, bytes, "bytes received")                                     \
	X(P, not_udp, "frames dropped: not UDP over IP (ARP, ICMP, TCP)") \
	X(P, ip_fragments, "IP fragments dropped, never reassembled")    \
	X(P, malformed, "frames dropped: bad Ethernet, IP or UDP")        \
	X(P, unknown_flow, "UDP datagrams to no camera's port")           \
	X(P, rtcp, "RTCP packets (sender reports: wall-clock time)")     \
	X(P, answered, "ARP and ICMP echo replies sent")
VG_COUNTERS_DECLARE(dp_rx, DP_RX, DP_RX_COUNTERS)

#define BURST 32
#define N_MBUFS 16383
#define MAX_AU (4u << 20) /* a 4K intra frame at high quality stays under 4 MiB */
#define MAX_PORTS 16

struct cam {
	struct dp_camera_report *rep;
	struct dp_reorder *ro;
	struct dp_depay *depay;
	struct dp_decoder *dec;
	uint8_t pt;
	bool ssrc_known;
	int next_same_port; /* the next camera on this UDP port (no-SDP mode), or -1 */
	bool have_sr;
	struct dp_rtcp_sr sr; /* the last sender report: wall clock at an RTP timestamp */
	uint32_t clock_rate;
	unsigned index;
	struct run *run;
};

#define MAX_WORKERS 16
#define WORKER_RING 256
#define AU_POOL_ELT (2u << 20) /* an access unit handed to a decode worker; larger ones are dropped */
#define AU_POOL_COUNT 64

/* An access unit on its way to a decode worker, at the start of a pool buffer. */
struct au_msg {
	uint32_t cam, ts, flags, len;
	uint8_t data[];
};

struct run {
	const struct dp_run_conf *conf;
	struct dp_run_report *rep;
	struct cam cams[DP_MAX_CAMERAS];
	unsigned n_cams;
	int16_t by_port[65536]; /* first camera on a destination port, -1 if none */
	struct vg_counter_row *ctr;
	/* Decode workers (conf->decode_workers > 0): camera i decodes on worker i % n, in order. */
	unsigned n_workers;
	pthread_t workers[MAX_WORKERS];
	struct rte_ring *rings[MAX_WORKERS];
	struct vg_pool *au_pool;
	atomic_bool workers_stop;
};

static _Thread_local struct cam *decoding; /* the camera whose AU this thread is decoding */

static _Thread_local unsigned current_camera;

unsigned dp_run_current_camera(void)
{
	return current_camera;
}

static void on_frame(void *arg, const struct dp_frame *f)
{
	struct run *run = arg;
	struct cam *c = decoding;

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
	struct cam *c = arg;
	struct run *run = c->run;

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
	struct run *run;
	unsigned index;
};
static struct worker_arg worker_args[MAX_WORKERS];

/* A decode worker: drains its ring until told to stop and the ring is empty. */
static void *worker_main(void *arg)
{
	const struct worker_arg *wa = arg;
	struct run *run = wa->run;
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
			struct cam *c = &run->cams[m->cam];
			struct dp_au au = { .data = m->data, .len = m->len, .ts = m->ts, .flags = m->flags };
			decoding = c;
			dp_decoder_push(c->dec, &au);
			vg_pool_put(run->au_pool, m);
		}
	}
	return NULL;
}

static int workers_start(struct run *run, unsigned n, char *err, size_t errlen)
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
static void workers_stop(struct run *run)
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

static int cam_add(struct run *run, enum dp_codec codec, uint16_t port, uint8_t pt, const uint8_t *params,
		   size_t params_len, char *err, size_t errlen)
{
	struct cam *c;
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

static void cam_drain(struct cam *c, bool flush)
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

static struct cam *flow_find(struct run *run, uint16_t port, uint32_t ssrc, uint8_t pt)
{
	int i = run->by_port[port];

	if (run->conf->sdp) {
		if (i < 0)
			return NULL;
		struct cam *c = &run->cams[i];
		if (c->ssrc_known && c->rep->ssrc != ssrc) {
			/* A new SSRC on a camera's port: the camera restarted its stream. */
			cam_drain(c, true);
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
	if (cam_add(run, pt == 26 ? DP_CODEC_MJPEG : DP_CODEC_H264, port, pt, NULL, 0, NULL, 0) < 0)
		return NULL;
	struct cam *c = &run->cams[run->n_cams - 1];
	c->rep->ssrc = ssrc;
	c->ssrc_known = true;
	return c;
}

/*
 * One received frame through parse, flow lookup, RTP, reorder and depacketize. Measured with
 * tests/dataplane/bench_dp.py (640x480 H.264 at MTU 1400, one core, shared 2-core VM): about
 * 1,100 cycles per packet including net_pcap's own file read and copy, against about 1,000-1,600
 * for the bare rx_burst+free loop (--rx-only): the PMD dominates, not this.
 */
/* ARP and ICMP echo for our address, sent back on the port it came from. True if answered. */
static bool answer(struct run *run, struct rte_mbuf *m)
{
	struct rte_ether_addr mac;
	struct rte_mbuf *r;
	int n;

	if (rte_eth_macaddr_get(m->port, &mac) != 0 || !(r = rte_pktmbuf_alloc(m->pool)))
		return false;
	n = dp_pkt_answer(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m), run->conf->local_ip,
			  mac.addr_bytes, rte_pktmbuf_mtod(r, uint8_t *), rte_pktmbuf_tailroom(r));
	if (n <= 0) {
		rte_pktmbuf_free(r);
		return false;
	}
	r->data_len = r->pkt_len = (uint32_t)n;
	if (rte_eth_tx_burst(m->port, 0, &r, 1) != 1) {
		rte_pktmbuf_free(r);
		return false;
	}
	vg_counter_add(run->ctr, DP_RX_answered, 1);
	return true;
}

/* RTCP: on the RTP port (rtcp-mux, RFC 5761) or the one above it (RFC 3550's default). */
static void rtcp_one(struct run *run, const struct dp_udp_view *udp)
{
	struct dp_rtcp_sr sr;

	vg_counter_add(run->ctr, DP_RX_rtcp, 1);
	if (dp_rtcp_parse_sr(udp->payload, udp->payload_len, &sr) < 0)
		return;
	for (int pass = 0; pass < 2; pass++) {
		int i = run->by_port[(uint16_t)(udp->dst_port - pass)];
		for (; i >= 0; i = run->cams[i].next_same_port) {
			struct cam *c = &run->cams[i];
			/* A sender may report before its first RTP packet (ffmpeg does): with an SDP the
			 * port names the camera, and the SSRC is checked when RTP arrives. */
			bool first = run->conf->sdp && !c->ssrc_known;
			if (first || (c->ssrc_known && c->rep->ssrc == sr.ssrc)) {
				c->sr = sr;
				c->have_sr = true;
				c->rep->rtcp_sr++;
				return;
			}
			if (run->conf->sdp)
				break;
		}
	}
}

static void rx_one(struct run *run, struct rte_mbuf *m)
{
	struct dp_udp_view udp;
	struct dp_rtp_pkt rtp;
	int rc;

	vg_counter_add(run->ctr, DP_RX_frames, 1);
	vg_counter_add(run->ctr, DP_RX_bytes, rte_pktmbuf_pkt_len(m));
	if (m->nb_segs != 1) {
		vg_counter_add(run->ctr, DP_RX_malformed, 1); /* jumbo frames are no camera's */
		goto out_free;
	}
	rc = dp_pkt_parse(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m), &udp);
	if (rc == -EPROTONOSUPPORT && run->conf->local_ip && answer(run, m))
		goto out_free;
	if (rc < 0) {
		if (rc == -EMSGSIZE)
			vg_counter_add(run->ctr, DP_RX_ip_fragments, 1);
		else if (rc == -EPROTONOSUPPORT)
			vg_counter_add(run->ctr, DP_RX_not_udp, 1);
		else
			vg_counter_add(run->ctr, DP_RX_malformed, 1);
		goto out_free;
	}
	rc = dp_rtp_parse(udp.payload, udp.payload_len, &rtp);
	if (rc < 0 && udp.payload_len >= 2 && (udp.payload[0] >> 6) == 2 && udp.payload[1] >= 192 && udp.payload[1] <= 223)
		rc = -EPROTONOSUPPORT; /* RTCP on RTCP's own port: its packet types look like RTP's marker + PT */
	if (rc == -EPROTONOSUPPORT) {
		rtcp_one(run, &udp);
		goto out_free;
	}
	if (rc < 0) {
		int i = run->by_port[udp.dst_port];
		if (i >= 0)
			run->cams[i].rep->malformed++;
		else
			vg_counter_add(run->ctr, DP_RX_unknown_flow, 1);
		goto out_free;
	}
	struct cam *c = flow_find(run, udp.dst_port, rtp.ssrc, rtp.pt);
	if (!c) {
		vg_counter_add(run->ctr, DP_RX_unknown_flow, 1);
		goto out_free;
	}
	if (rtp.pt != c->pt) {
		c->rep->malformed++;
		goto out_free;
	}
	/* The parsed header rides in the headroom until the reorder buffer hands the packet back. */
	if (VG_NEVER(rte_pktmbuf_headroom(m) < sizeof(rtp))) {
		vg_counter_add(run->ctr, DP_RX_malformed, 1);
		goto out_free;
	}
	memcpy(m->buf_addr, &rtp, sizeof(rtp));
	if (dp_reorder_push(c->ro, rtp.seq, rtp.ts, m) < 0)
		goto out_free;
	cam_drain(c, false);
	return;
out_free:
	rte_pktmbuf_free(m);
}

/* Records in a classic pcap file, to know when net_pcap has handed us all of them; -1 if unknown. */
static long pcap_count(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t gh[24], rh[16];
	long n = 0;
	bool swap;

	if (!f)
		return -1;
	if (fread(gh, 1, 24, f) != 24)
		goto out_unknown;
	uint32_t magic = (uint32_t)gh[0] | (uint32_t)gh[1] << 8 | (uint32_t)gh[2] << 16 | (uint32_t)gh[3] << 24;
	if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d)
		swap = false;
	else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1)
		swap = true;
	else
		goto out_unknown;
	while (fread(rh, 1, 16, f) == 16) {
		uint32_t incl = swap ? (uint32_t)rh[8] << 24 | (uint32_t)rh[9] << 16 | (uint32_t)rh[10] << 8 | rh[11]
				     : (uint32_t)rh[8] | (uint32_t)rh[9] << 8 | (uint32_t)rh[10] << 16 | (uint32_t)rh[11] << 24;
		if (fseek(f, incl, SEEK_CUR) != 0)
			break;
		n++;
	}
	fclose(f);
	return n;
out_unknown:
	fclose(f);
	return -1;
}

static int eal_start(const struct dp_run_conf *conf, char *err, size_t errlen)
{
	char *argv[64 + 2 * MAX_PORTS];
	char vdev[MAX_PORTS][4200];
	char extra[1024];
	int argc = 0, rc;

	argv[argc++] = "vigild";
	argv[argc++] = "-l";
	argv[argc++] = "0";
	argv[argc++] = "--no-huge";
	argv[argc++] = "--no-pci";
	argv[argc++] = "--no-shconf";
	argv[argc++] = "-m";
	argv[argc++] = "256";
	argv[argc++] = "--log-level=error";
	for (unsigned i = 0; i < conf->n_pcaps; i++) {
		if (strchr(conf->pcaps[i], ',') || strlen(conf->pcaps[i]) > 4096)
			return vg_errf(err, errlen, -EINVAL, "capture path %s: no commas, at most 4096 bytes", conf->pcaps[i]);
		if (i == 0 && conf->tx_pcap && (strchr(conf->tx_pcap, ',') || strlen(conf->tx_pcap) > 64))
			return vg_errf(err, errlen, -EINVAL, "tx capture path: no commas, at most 64 bytes");
		snprintf(vdev[i], sizeof(vdev[i]), "net_pcap%u,rx_pcap=%s%s%s", i, conf->pcaps[i],
			 i == 0 && conf->tx_pcap ? ",tx_pcap=" : "", i == 0 && conf->tx_pcap ? conf->tx_pcap : "");
		argv[argc++] = "--vdev";
		argv[argc++] = vdev[i];
	}
	for (unsigned i = 0; i < conf->n_ifaces; i++) {
		unsigned k = conf->n_pcaps + i;
		if (strchr(conf->ifaces[i], ',') || strlen(conf->ifaces[i]) > 64)
			return vg_errf(err, errlen, -EINVAL, "interface name %s: no commas, at most 64 bytes", conf->ifaces[i]);
		snprintf(vdev[k], sizeof(vdev[k]), "net_af_packet%u,iface=%s", i, conf->ifaces[i]);
		argv[argc++] = "--vdev";
		argv[argc++] = vdev[k];
	}
	if (conf->eal_extra) {
		snprintf(extra, sizeof(extra), "%s", conf->eal_extra);
		for (char *save, *t = strtok_r(extra, " ", &save); t && argc < 62 + 2 * MAX_PORTS; t = strtok_r(NULL, " ", &save))
			argv[argc++] = t;
	}
	argv[argc] = NULL;
	rc = rte_eal_init(argc, argv);
	if (rc < 0)
		return vg_errf(err, errlen, -rte_errno ? -rte_errno : -EIO, "DPDK EAL init failed: %s", rte_strerror(rte_errno));
	return 0;
}

static int port_start(uint16_t port, struct rte_mempool *pool, char *err, size_t errlen)
{
	struct rte_eth_conf pconf = { 0 };
	int rc;

	rc = rte_eth_dev_configure(port, 1, 1, &pconf);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), NULL, pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(port, 0, 64, rte_eth_dev_socket_id(port), NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(port);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "port %u: %s", port, rte_strerror(-rc));
	return 0;
}

int dp_run_pcap(const struct dp_run_conf *conf, struct dp_run_report *report, char *err, size_t errlen)
{
	struct run *run;
	struct rte_mempool *pool;
	struct vg_counter_block *ctrs;
	uint64_t cv[DP_RX__COUNT];
	long expect = 0;
	int rc;

	if (conf->n_pcaps + conf->n_ifaces == 0 || conf->n_pcaps + conf->n_ifaces > MAX_PORTS)
		return vg_errf(err, errlen, -EINVAL, "between 1 and %d captures and interfaces", MAX_PORTS);
	if (!conf->until_eof && !conf->stop && !conf->seconds)
		return vg_errf(err, errlen, -EINVAL, "without until_eof a stop flag or a duration is needed");
	if (conf->n_ifaces)
		expect = -1; /* live interfaces have no end: until_eof waits for 2 s of quiet */
	for (unsigned i = 0; i < conf->n_pcaps; i++) {
		long n = pcap_count(conf->pcaps[i]);
		if (n < 0) {
			FILE *f = fopen(conf->pcaps[i], "rb");
			if (!f)
				return vg_errf(err, errlen, -ENOENT, "cannot open capture %s", conf->pcaps[i]);
			fclose(f);
			expect = -1; /* pcapng: stop when the ports go quiet instead */
		} else if (expect >= 0) {
			expect += n;
		}
	}
	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	rc = vg_counter_block_create(&ctrs, "dp_rx", dp_rx_counter_desc, DP_RX__COUNT, 1);
	if (rc < 0) {
		free(run);
		return vg_errf(err, errlen, rc, "counters: %s", vg_strerror(rc));
	}
	run->ctr = vg_counter_block_row(ctrs, 0);
	memset(report, 0, sizeof(*report));
	run->conf = conf;
	run->rep = report;
	memset(run->by_port, 0xff, sizeof(run->by_port));
	if (conf->sdp) {
		for (unsigned i = 0; i < conf->sdp->n_media; i++) {
			const struct dp_sdp_media *m = &conf->sdp->media[i];
			if (m->port == 0) {
				rc = vg_errf(err, errlen, -EINVAL, "sdp stream %u has no port", i + 1);
				goto out_free_cams;
			}
			rc = cam_add(run, m->codec, m->port, m->pt, m->params, m->params_len, err, errlen);
			if (rc < 0)
				goto out_free_cams;
		}
	}
	rc = eal_start(conf, err, errlen);
	if (rc < 0)
		goto out_free_cams;
	pool = rte_pktmbuf_pool_create("dp_rx", N_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!pool) {
		rc = vg_errf(err, errlen, -ENOMEM, "mbuf pool: %s", rte_strerror(rte_errno));
		goto out_eal;
	}
	uint16_t nports = rte_eth_dev_count_avail();
	if (nports != conf->n_pcaps + conf->n_ifaces) {
		rc = vg_errf(err, errlen, -ENODEV, "%u DPDK ports for %u captures and %u interfaces", nports,
			     conf->n_pcaps, conf->n_ifaces);
		goto out_pool;
	}
	uint16_t port;
	RTE_ETH_FOREACH_DEV(port)
	{
		rc = port_start(port, pool, err, errlen);
		if (rc < 0)
			goto out_pool;
	}

	if (conf->decode && conf->decode_workers) {
		if (conf->decode_workers > MAX_WORKERS) {
			rc = vg_errf(err, errlen, -EINVAL, "at most %d decode workers", MAX_WORKERS);
			goto out_workers;
		}
		rc = workers_start(run, conf->decode_workers, err, errlen);
		if (rc < 0)
			goto out_workers;
	}

	uint64_t t0 = rte_rdtsc(), hz = rte_get_tsc_hz(), last_rx = t0;
	uint64_t got = 0;
	for (;;) {
		unsigned n_all = 0;
		RTE_ETH_FOREACH_DEV(port)
		{
			struct rte_mbuf *burst[BURST];
			uint16_t n = rte_eth_rx_burst(port, 0, burst, BURST);
			if (conf->rx_only) {
				for (uint16_t i = 0; i < n; i++)
					vg_counter_add(run->ctr, DP_RX_bytes, rte_pktmbuf_pkt_len(burst[i]));
				vg_counter_add(run->ctr, DP_RX_frames, n);
				rte_pktmbuf_free_bulk(burst, n);
			} else {
				for (uint16_t i = 0; i < n; i++)
					rx_one(run, burst[i]);
			}
			n_all += n;
		}
		got += n_all;
		uint64_t now = rte_rdtsc();
		if (n_all)
			last_rx = now;
		if (conf->stop && atomic_load(conf->stop))
			break;
		if (conf->seconds && now - t0 > conf->seconds * hz)
			break;
		if (conf->until_eof) {
			if (expect >= 0 && got >= (uint64_t)expect)
				break;
			/* A short capture, a pcapng file, or packets the PMD refused: quiet for 2 s is the end. */
			if (now - last_rx > 2 * hz)
				break;
		}
	}
	for (unsigned i = 0; i < run->n_cams; i++) {
		struct cam *c = &run->cams[i];
		cam_drain(c, true);
		dp_depay_flush(c->depay);
	}
	workers_stop(run);
	for (unsigned i = 0; i < run->n_cams; i++) {
		struct cam *c = &run->cams[i];
		if (c->dec) {
			decoding = c;
			dp_decoder_flush(c->dec);
		}
	}
	report->rx.tsc_cycles = rte_rdtsc() - t0;
	report->rx.seconds = (double)report->rx.tsc_cycles / (double)hz;
	RTE_ETH_FOREACH_DEV(port)
	{
		struct rte_eth_stats st;
		if (rte_eth_stats_get(port, &st) == 0)
			report->rx.mbuf_drops += st.imissed + st.rx_nombuf;
		rte_eth_dev_stop(port);
		rte_eth_dev_close(port);
	}
	rc = 0;
out_workers:
	workers_stop(run);
out_pool:
	rte_mempool_free(pool);
out_eal:
	rte_eal_cleanup();
out_free_cams:
	for (unsigned i = 0; i < run->n_cams; i++) {
		struct cam *c = &run->cams[i];
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
	vg_counter_block_read(ctrs, cv);
	report->rx.frames = cv[DP_RX_frames];
	report->rx.bytes = cv[DP_RX_bytes];
	report->rx.not_udp = cv[DP_RX_not_udp];
	report->rx.ip_fragments = cv[DP_RX_ip_fragments];
	report->rx.malformed = cv[DP_RX_malformed];
	report->rx.unknown_flow = cv[DP_RX_unknown_flow];
	report->rx.rtcp = cv[DP_RX_rtcp];
	report->rx.answered = cv[DP_RX_answered];
	vg_counter_block_destroy(&ctrs);
	free(run);
	return rc;
}
