/*
 * The receive loop: DPDK EAL with --no-huge, one net_pcap port per capture, and on this lcore
 * the whole graph per burst: Ethernet/IP/UDP parse -> flow table (destination port, SSRC) ->
 * RTP validation -> reorder -> depacketize -> decode. Every drop is a counter, never a log line.
 * This file is the loop and the frame's way to its camera; dp_cam.c is the camera's part (the
 * flow table, the reorder buffer drained into the depacketizer, the hand-off to a decoder).
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

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dp.h"
#include "dp_run_int.h"
#include "vg_base.h"
#include "vg_counter.h"
#include "vg_log.h"

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
#define MAX_PORTS 16

/* ARP and ICMP echo for our address, sent back on the port it came from. True if answered. */
static bool answer(struct dp_run *run, struct rte_mbuf *m)
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
static void rtcp_one(struct dp_run *run, const struct dp_udp_view *udp)
{
	struct dp_rtcp_sr sr;

	vg_counter_add(run->ctr, DP_RX_rtcp, 1);
	if (dp_rtcp_parse_sr(udp->payload, udp->payload_len, &sr) < 0)
		return;
	for (int pass = 0; pass < 2; pass++) {
		int i = run->by_port[(uint16_t)(udp->dst_port - pass)];
		for (; i >= 0; i = run->cams[i].next_same_port) {
			struct dp_cam *c = &run->cams[i];
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

/*
 * One received frame through parse, flow lookup, RTP, reorder and depacketize. Measured with
 * tests/dataplane/bench_dp.py (640x480 H.264 at MTU 1400, one core, shared 2-core VM): about
 * 1,100 cycles per packet including net_pcap's own file read and copy, against about 1,000-1,600
 * for the bare rx_burst+free loop (--rx-only): the PMD dominates, not this.
 */
static void rx_one(struct dp_run *run, struct rte_mbuf *m)
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
	struct dp_cam *c = dp_cam_find(run, udp.dst_port, rtp.ssrc, rtp.pt);
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
	dp_cam_drain(c, false);
	return;
out_free:
	rte_pktmbuf_free(m);
}

/*
 * Records in a classic pcap file, to know when net_pcap has handed us all of them; -1 if unknown.
 * It walks the record headers with fseek rather than vg_file_read(): a capture can be gigabytes,
 * and only its 16-byte headers are wanted.
 */
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

/*
 * Check CONF and count the records its captures hold into *EXPECT, so that until_eof knows when
 * net_pcap has handed over all of them: -1 where that cannot be known (a live interface, pcapng).
 */
static int run_conf_check(const struct dp_run_conf *conf, long *expect, char *err, size_t errlen)
{
	if (conf->n_pcaps + conf->n_ifaces == 0 || conf->n_pcaps + conf->n_ifaces > MAX_PORTS)
		return vg_errf(err, errlen, -EINVAL, "between 1 and %d captures and interfaces", MAX_PORTS);
	if (!conf->until_eof && !conf->stop && !conf->seconds)
		return vg_errf(err, errlen, -EINVAL, "without until_eof a stop flag or a duration is needed");
	*expect = 0;
	if (conf->n_ifaces)
		*expect = -1; /* live interfaces have no end: until_eof waits for 2 s of quiet */
	for (unsigned i = 0; i < conf->n_pcaps; i++) {
		long n = pcap_count(conf->pcaps[i]);
		if (n < 0) {
			FILE *f = fopen(conf->pcaps[i], "rb");
			if (!f)
				return vg_errf(err, errlen, -ENOENT, "cannot open capture %s", conf->pcaps[i]);
			fclose(f);
			*expect = -1; /* pcapng: stop when the ports go quiet instead */
		} else if (*expect >= 0) {
			*expect += n;
		}
	}
	return 0;
}

/* One camera per video stream of the SDP, if there is one (without, flows make cameras). */
static int run_cams_from_sdp(struct dp_run *run, char *err, size_t errlen)
{
	const struct dp_run_conf *conf = run->conf;
	int rc;

	if (conf->sdp) {
		for (unsigned i = 0; i < conf->sdp->n_media; i++) {
			const struct dp_sdp_media *m = &conf->sdp->media[i];
			if (m->port == 0)
				return vg_errf(err, errlen, -EINVAL, "sdp stream %u has no port", i + 1);
			rc = dp_cam_add(run, m->codec, m->port, m->pt, m->params, m->params_len, err, errlen);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* The mbuf pool and every port EAL made of CONF, started. The EAL is the caller's to clean up. */
static int run_ports_start(const struct dp_run_conf *conf, struct rte_mempool **out, char *err, size_t errlen)
{
	struct rte_mempool *pool;
	int rc;

	pool = rte_pktmbuf_pool_create("dp_rx", N_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!pool)
		return vg_errf(err, errlen, -ENOMEM, "mbuf pool: %s", rte_strerror(rte_errno));
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
	*out = pool;
	return 0;
out_pool:
	rte_mempool_free(pool);
	return rc;
}

/*
 * The RX loop: a burst from every port in turn until the stop flag, the duration, or (until_eof)
 * the end of the captures, EXPECT records or 2 s of quiet. Returns the TSC at its start.
 */
static uint64_t rx_loop(struct dp_run *run, long expect)
{
	const struct dp_run_conf *conf = run->conf;
	uint64_t t0 = rte_rdtsc(), hz = rte_get_tsc_hz(), last_rx = t0;
	uint64_t got = 0;
	uint16_t port;

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
	return t0;
}

/* After the loop: what the reorder buffers, depacketizers and decoders hold, then the ports. */
static void rx_finish(struct dp_run *run, uint64_t t0)
{
	struct dp_run_report *report = run->rep;
	uint16_t port;

	for (unsigned i = 0; i < run->n_cams; i++) {
		struct dp_cam *c = &run->cams[i];
		dp_cam_drain(c, true);
		dp_depay_flush(c->depay);
	}
	dp_cam_workers_stop(run);
	for (unsigned i = 0; i < run->n_cams; i++)
		dp_cam_decode_flush(&run->cams[i]);
	report->rx.tsc_cycles = rte_rdtsc() - t0;
	report->rx.seconds = (double)report->rx.tsc_cycles / (double)rte_get_tsc_hz();
	RTE_ETH_FOREACH_DEV(port)
	{
		struct rte_eth_stats st;
		if (rte_eth_stats_get(port, &st) == 0)
			report->rx.mbuf_drops += st.imissed + st.rx_nombuf;
		rte_eth_dev_stop(port);
		rte_eth_dev_close(port);
	}
}

/* The RX stage's counters into the report. */
static void rx_report(struct vg_counter_block *ctrs, struct dp_run_report *report)
{
	uint64_t cv[DP_RX__COUNT];

	vg_counter_block_read(ctrs, cv);
	report->rx.frames = cv[DP_RX_frames];
	report->rx.bytes = cv[DP_RX_bytes];
	report->rx.not_udp = cv[DP_RX_not_udp];
	report->rx.ip_fragments = cv[DP_RX_ip_fragments];
	report->rx.malformed = cv[DP_RX_malformed];
	report->rx.unknown_flow = cv[DP_RX_unknown_flow];
	report->rx.rtcp = cv[DP_RX_rtcp];
	report->rx.answered = cv[DP_RX_answered];
}

int dp_run_pcap(const struct dp_run_conf *conf, struct dp_run_report *report, char *err, size_t errlen)
{
	struct dp_run *run;
	struct rte_mempool *pool = NULL;
	struct vg_counter_block *ctrs;
	long expect = 0;
	int rc;

	rc = run_conf_check(conf, &expect, err, errlen);
	if (rc < 0)
		return rc;
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
	rc = run_cams_from_sdp(run, err, errlen);
	if (rc < 0)
		goto out_free_cams;
	rc = eal_start(conf, err, errlen);
	if (rc < 0)
		goto out_free_cams;
	rc = run_ports_start(conf, &pool, err, errlen);
	if (rc < 0)
		goto out_eal;

	if (conf->decode && conf->decode_workers) {
		if (conf->decode_workers > MAX_WORKERS) {
			rc = vg_errf(err, errlen, -EINVAL, "at most %d decode workers", MAX_WORKERS);
			goto out_workers;
		}
		rc = dp_cam_workers_start(run, conf->decode_workers, err, errlen);
		if (rc < 0)
			goto out_workers;
	}
	rx_finish(run, rx_loop(run, expect));
	rc = 0;
out_workers:
	dp_cam_workers_stop(run);
	rte_mempool_free(pool);
out_eal:
	rte_eal_cleanup();
out_free_cams:
	for (unsigned i = 0; i < run->n_cams; i++)
		dp_cam_close(&run->cams[i], report);
	rx_report(ctrs, report);
	vg_counter_block_destroy(&ctrs);
	free(run);
	return rc;
}
