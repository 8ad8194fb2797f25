/**
 * @file dp.h
 * The dataplane: camera packets in, decoded frames out. Ethernet/VLAN/IPv4/IPv6/UDP parsing,
 * RTP (RFC 3550) validation, sequence tracking and a bounded reorder buffer, depacketizers for
 * H.264 (RFC 6184), H.265 (RFC 7798) and MJPEG (RFC 2435), SDP parsing, RTCP sender reports,
 * ARP/ICMP answers for the port's address, libavcodec decode, an RTSP client, and the DPDK
 * receive loop (net_pcap captures, net_af_packet interfaces) that `vigild run` drives.
 *
 * Invariants:
 * - Nothing a camera sends can crash the dataplane: every parser here takes untrusted bytes with
 *   their length, never reads past them, and answers a malformed input with a negative errno that
 *   the caller counts (DESIGN.md invariant 6). Each has a libFuzzer target in tests/fuzz.
 * - The per-packet functions (dp_pkt_parse, dp_rtp_parse, dp_reorder_*, dp_depay_push) never
 *   allocate and never log; their state is sized when it is created.
 * - A depacketizer copies each payload byte at most once, into its own access-unit buffer.
 * - All functions return 0 (or a count) on success and -errno on failure; OUT parameters are left
 *   untouched on error.
 * - Camera credentials (RTSP) live only inside a struct dp_rtsp, are zeroed when it closes, and
 *   never appear in an error reason or a log line.
 * - Access-unit buffers are MADV_DONTDUMP and scrubbed when freed (DESIGN.md invariant 1).
 */
#ifndef DP_H
#define DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Ethernet / IP / UDP ------------------------------------------------------------------ */

/** What dp_pkt_parse() found in one Ethernet frame: the UDP payload and its addressing. */
struct dp_udp_view {
	const uint8_t *payload; /* points into the frame */
	size_t payload_len;
	uint16_t src_port, dst_port;
	uint16_t vlan;   /* outermost VLAN id, 0 if untagged */
	uint8_t ip_version; /* 4 or 6 */
};

/**
 * Parse an Ethernet frame (up to two VLAN tags) carrying IPv4 or IPv6 and UDP.
 * Returns 0, or: -EPROTONOSUPPORT (not IP, or IP but not UDP: ARP, ICMP, TCP, ...),
 * -EMSGSIZE (an IP fragment: counted and dropped, never reassembled), -EBADMSG (truncated or
 * inconsistent lengths, bad IP version or header length).
 */
int dp_pkt_parse(const uint8_t *frame, size_t len, struct dp_udp_view *out /* OUT */);

/**
 * The answer the dataplane owes a frame that is for its own address LOCAL_IP (IPv4, network byte
 * order) and MAC: an ARP reply to an ARP request for LOCAL_IP, an ICMP echo reply to an echo
 * request to LOCAL_IP (VLAN tags kept), so cameras can reach it. Writes the reply into OUT (CAP
 * bytes) and returns its length, 0 when the frame needs no answer, -EBADMSG when it is malformed,
 * -ENOSPC when CAP is short.
 */
int dp_pkt_answer(const uint8_t *frame, size_t len, uint32_t local_ip, const uint8_t mac[6], uint8_t *out,
		  size_t cap);

/* ---- RTP ------------------------------------------------------------------------------------ */

/** A validated RTP packet: header fields and the payload (CSRCs, extension and padding removed). */
struct dp_rtp_pkt {
	const uint8_t *payload; /* points into the caller's packet */
	size_t payload_len;
	uint32_t ts;
	uint32_t ssrc;
	uint16_t seq;
	uint8_t pt;
	bool marker;
};

/**
 * Validate an RTP packet (RFC 3550 5.1): version 2, the CSRC list, the header extension and
 * the padding all inside LEN, padding count non-zero. RTCP (payload types 72-76 with the
 * marker bit, RFC 5761) is refused with -EPROTONOSUPPORT. Returns 0 or -EBADMSG.
 */
int dp_rtp_parse(const uint8_t *pkt, size_t len, struct dp_rtp_pkt *out /* OUT */);

/** An RTCP sender report (RFC 3550 6.4.1): the sender's wall clock at one RTP timestamp. */
struct dp_rtcp_sr {
	uint32_t ssrc;
	uint64_t ntp;    /* NTP timestamp, 32.32 fixed point seconds since 1900 */
	uint32_t rtp_ts; /* the RTP timestamp that corresponds to it */
};

/**
 * Find the sender report in a (compound) RTCP packet, walking its packets by their length
 * fields. Returns 0, -ENOENT (valid RTCP without an SR), or -EBADMSG.
 */
int dp_rtcp_parse_sr(const uint8_t *pkt, size_t len, struct dp_rtcp_sr *out /* OUT */);

/** Nanoseconds since the Unix epoch of a 32.32 NTP timestamp (0 for times before 1970). */
uint64_t dp_ntp_to_unix_ns(uint64_t ntp);

/*
 * Sequence tracking and reordering, per camera. The buffer holds at most `slots` packets ahead
 * of the next one due. A gap is given up on (its sequence numbers counted lost) when the packet
 * after it has waited `window_ms` of RTP time (the newest packet's timestamp minus the held one's,
 * at `clock_rate`), when `max_held` packets wait behind it, or at flush. Timing comes from RTP
 * timestamps, not arrival, so a recorded capture replays with the same counts at any speed.
 */
#define DP_REORDER_MAX_SLOTS 1024

struct dp_reorder_conf {
	unsigned slots;      /* power of two, 16..DP_REORDER_MAX_SLOTS */
	unsigned max_held;   /* 1..slots-1 */
	unsigned window_ms;  /* 0: no time limit, only max_held */
	uint32_t clock_rate; /* RTP clock, Hz (90000 for video) */
};

/** The counters of one stream; what the report's rtp_* fields show. */
struct dp_rtp_stats {
	uint64_t packets;    /* valid RTP packets pushed, duplicates included */
	uint64_t lost;       /* sequence numbers given up on: never delivered */
	uint64_t reordered;  /* arrived after a higher sequence number, still delivered in order */
	uint64_t duplicates; /* a sequence number already received */
	uint64_t late;       /* arrived after its sequence number was given up on; dropped */
	uint64_t resyncs;    /* the sender jumped (restart, new SSRC state): buffer flushed, restarted */
};

struct dp_reorder;

/** Make a reorder buffer. -EINVAL for a bad conf, -ENOMEM. */
int dp_reorder_create(struct dp_reorder **out, const struct dp_reorder_conf *conf);
/** Free it; items still held are dropped (the caller frees them first with dp_reorder_flush). */
void dp_reorder_destroy(struct dp_reorder **r);

/**
 * Offer packet SEQ (RTP timestamp TS) with the caller's ITEM (an mbuf, a buffer...).
 * Returns 0 when the buffer took ITEM (it comes back from dp_reorder_pop in order), or
 * -EEXIST (duplicate) / -ETIME (late, or the first packet of a suspected restart, RFC 3550
 * A.1's probation): ITEM stays the caller's, to free; it was counted. The caller pops until NULL
 * after every push (-EBUSY otherwise).
 */
int dp_reorder_push(struct dp_reorder *r, uint16_t seq, uint32_t ts, void *item);

/**
 * The next packet in order, or NULL if it has to wait. *GAP (OUT) is the number of sequence
 * numbers given up on just before it (0 normally), so the depacketizer can mark its frame
 * damaged. With FLUSH, gaps are given up on at once (end of stream).
 */
void *dp_reorder_pop(struct dp_reorder *r, bool flush, uint32_t *gap /* OUT */);

const struct dp_rtp_stats *dp_reorder_stats(const struct dp_reorder *r);

/* ---- Depacketizers ---------------------------------------------------------------------------- */

enum dp_codec {
	DP_CODEC_NONE = 0,
	DP_CODEC_H264,
	DP_CODEC_H265,
	DP_CODEC_MJPEG,
};

const char *dp_codec_name(enum dp_codec codec); /* "h264", "h265", "mjpeg", "none" */

enum dp_au_flags {
	DP_AU_DAMAGED = 1 << 0, /* packets of this access unit were lost or malformed */
	DP_AU_KEY = 1 << 1,     /* holds an IDR/IRAP picture (H.264/H.265); every JPEG frame */
};

/** One access unit: Annex-B byte stream (H.264/H.265) or a whole JFIF image (MJPEG). */
struct dp_au {
	const uint8_t *data; /* the depacketizer's buffer, valid during the callback only */
	size_t len;
	uint32_t ts; /* RTP timestamp */
	unsigned flags;
};

typedef void dp_au_fn(void *arg, const struct dp_au *au);

struct dp_depay;

/**
 * Make a depacketizer for CODEC whose access units are at most MAX_AU bytes (bigger ones are
 * dropped: see dp_depay_push). EMIT is called from dp_depay_push/flush with each access unit.
 */
int dp_depay_create(struct dp_depay **out, enum dp_codec codec, size_t max_au, dp_au_fn *emit, void *arg);
void dp_depay_destroy(struct dp_depay **d);

/**
 * Feed the next packet in sequence order. GAP is the count of packets lost just before it (from
 * dp_reorder_pop). An access unit ends at the marker bit, or when the timestamp changes.
 * Returns 0, or -EBADMSG when the payload is malformed (an FU without its start, STAP/AP sizes
 * past the end, a JPEG header out of range, ...): the packet is dropped, the access unit in
 * progress is marked damaged, and the caller counts it; or -ENOBUFS when the access unit
 * outgrew MAX_AU: it is dropped whole (counted by the caller).
 */
int dp_depay_push(struct dp_depay *d, const struct dp_rtp_pkt *pkt, uint32_t gap);
/** Emit what is buffered (end of stream). */
void dp_depay_flush(struct dp_depay *d);

/**
 * Out-of-band parameter sets (SDP sprop-*), as an Annex-B stream that is put in front of the
 * first access unit, so a decoder can start on a stream that carries them only in the SDP.
 */
int dp_depay_set_prefix(struct dp_depay *d, const uint8_t *annexb, size_t len);

/* ---- SDP ----------------------------------------------------------------------------------- */

#define DP_SDP_MAX_MEDIA 64

struct dp_sdp_media {
	enum dp_codec codec;
	uint16_t port;       /* from m=; 0 when the server picks (RTSP) */
	uint8_t pt;
	uint32_t clock_rate;
	int packetization_mode; /* H.264, 0 or 1 */
	char control[256];   /* a=control, for RTSP SETUP ("" if absent) */
	uint8_t params[512]; /* sprop parameter sets as an Annex-B stream */
	size_t params_len;
};

struct dp_sdp {
	unsigned n_media; /* video media with a codec we know, in m= order */
	struct dp_sdp_media media[DP_SDP_MAX_MEDIA];
};

/**
 * Parse an SDP description (RFC 4566) of LEN bytes: its video m= lines whose codec we can
 * depacketize (H264, H265, JPEG), with their rtpmap, fmtp and control attributes. Other media
 * are skipped. Returns 0, or -EBADMSG with a one-line reason in ERR.
 */
int dp_sdp_parse(const char *text, size_t len, struct dp_sdp *out /* OUT */, char *err, size_t errlen);

/* ---- Decode --------------------------------------------------------------------------------- */

/*
 * Decoding is libavcodec's, one decoder per camera on one thread. A decoder may be asked to decode
 * on a CUDA device through libavcodec's CUDA hwaccel (NVDEC): its frames are then handed on in
 * device memory and consumed in place, with no copy through the host. libavcodec loads libcuda and
 * libnvcuvid at run time (ffnvcodec), so the dataplane has no link dependency on CUDA.
 *
 * Where NVDEC cannot start for a camera (no driver, no such device, no libnvcuvid, a codec or
 * profile NVDEC lacks, a surface format other than NV12 such as 10-bit P010, an NVDEC refusal when
 * a stream's parameters arrive) that camera is decoded in software instead: counted, with a
 * one-line reason (dp_decoder_fallback), never an error. JPEG is always decoded in software: JPEG
 * decoders are not bit-exact with each other, and --framemd5 must not depend on the decoder.
 * An NVDEC failure mid-stream is counted like a decode error (the stream goes on); after
 * DP_DECODE_HW_ERROR_LIMIT failures in a row the camera is reopened in software, also counted.
 *
 * Device frames: the consumer contract.
 * - dp_frame.on_device says the planes are in device memory of CUDA device dp_frame.cuda_device
 *   (AVFrame with a CUDA hw_frames_ctx, format AV_PIX_FMT_CUDA); dp_frame.sw_pix_fmt is their
 *   layout, always AV_PIX_FMT_NV12: data[0] = Y, data[1] = interleaved UV (U first), linesize[0]
 *   and linesize[1] their pitches in bytes, all device pointers. The picture is width x height
 *   starting at (crop_left, crop_top): libavcodec crops a hw frame on the right and bottom only
 *   (both 0 for the usual streams, whose coded size pads only right and bottom).
 * - The memory is usable from the CUDA runtime API: the device is opened on its primary context
 *   (AV_CUDA_USE_PRIMARY_CONTEXT), the one cudaSetDevice(cuda_device) uses.
 * - The frame is valid during the callback. The consumer may keep it by taking its own reference
 *   with av_frame_ref() during the callback and must av_frame_unref() it later, from any thread;
 *   a held reference stays valid after the decoder is destroyed (libavcodec refcounts its NVDEC
 *   decoder and device). The decoder reserves dp_decoder_conf.frames_held surfaces beyond what
 *   decoding needs (AVCodecContext.extra_hw_frames), so a consumer holding at most that many
 *   frames never starves it; one holding more makes decoding fail ("no surfaces left", counted
 *   as hw_errors) until it lets go. In 5.1 a held frame pins both its decode surface and its
 *   mapping. NVDEC has about 32 decode surfaces (libavcodec warns past that): a frames_held too
 *   large for the stream's references makes NVDEC refuse to start, and the camera falls back,
 *   saying so.
 * - Why the planes are complete when the callback runs (libavcodec 59, Debian 12's FFmpeg 5.1,
 *   libavcodec/nvdec.c nvdec_retrieve_data): before the frame is returned, the decoded picture is
 *   mapped with cuvidMapVideoFrame, which queues NVDEC's post-processing (its decode surface into
 *   a linear NV12 output surface) on the device context's stream; Vigil leaves that stream NULL,
 *   the legacy default stream of the primary context. In 5.1 the frame's planes are that mapped
 *   surface itself, with no device-to-device copy (FFmpeg 4.0 copied it synchronously and
 *   unmapped; 6.0 copies it unless AV_HWACCEL_FLAG_UNSAFE_OUTPUT); it is unmapped when the last
 *   reference goes. So CUDA work the consumer queues on the legacy default stream, or on any
 *   blocking stream of that context, runs after the planes are written. A consumer on a
 *   cudaStreamNonBlocking stream or the per-thread default stream must first order itself after
 *   stream 0 (an event recorded on stream 0, then cudaStreamWaitEvent). dp_frame_download() and
 *   dp_frame_md5() synchronise.
 */

struct dp_decoder;

/** A decoded picture, as handed on (valid during the callback only). */
struct dp_frame {
	const void *avframe; /* the libavcodec AVFrame */
	int width, height;   /* the picture's size */
	int pix_fmt;         /* enum AVPixelFormat: the planes' format on the host; AV_PIX_FMT_CUDA on the device */
	uint32_t ts;         /* RTP timestamp of its access unit */
	bool corrupt;
	uint64_t wall_ns;    /* the camera's wall clock (Unix ns) from RTCP sender reports; 0 if none yet */
	bool on_device;      /* planes in CUDA device memory (NVDEC): see "Device frames" above */
	int cuda_device;     /* on_device: the CUDA device index; -1 on the host */
	int sw_pix_fmt;      /* the planes' layout: AV_PIX_FMT_NV12 on the device, pix_fmt on the host */
	int crop_left, crop_top; /* on_device: where the picture starts in the planes; 0 on the host */
};

typedef void dp_frame_fn(void *arg, const struct dp_frame *frame);

struct dp_decode_stats {
	uint64_t aus;       /* access units given to the decoder */
	uint64_t frames;    /* frames decoded */
	uint64_t corrupt;   /* frames decoded from damaged data, or after loss before a key frame */
	uint64_t errors;    /* access units libavcodec refused (NVDEC failures included) */
	uint64_t frames_on_device; /* of frames, those handed on in device memory */
	uint64_t hw_errors; /* access units or frames NVDEC failed on */
	uint64_t fallbacks; /* 1 when NVDEC was asked for and this decoder went to software, else 0 */
};

#define DP_DECODE_HW_ERROR_LIMIT 3 /* NVDEC failures in a row before a camera reopens in software */
#define DP_DECODE_REASON_MAX 160   /* a fallback reason, NUL included */

struct dp_decoder_conf {
	enum dp_codec codec;
	bool cuda;            /* decode with NVDEC on CUDA device cuda_device, where it can start */
	unsigned cuda_device;
	unsigned frames_held; /* NVDEC: frames the consumer may hold beyond the callback (extra_hw_frames); 0: 4 */
};

/**
 * A decoder for CONF->codec (libavcodec, one thread): software, or NVDEC with conf->cuda (falling
 * back to software where it cannot start: not an error). EMIT is called from dp_decoder_push/flush
 * with each frame. Returns 0, -EINVAL (codec), -ENOTSUP (libavcodec lacks the decoder), -ENOMEM.
 */
int dp_decoder_open(struct dp_decoder **out, const struct dp_decoder_conf *conf, dp_frame_fn *emit, void *arg);
/** A software decoder for CODEC: dp_decoder_open without NVDEC. */
int dp_decoder_create(struct dp_decoder **out, enum dp_codec codec, dp_frame_fn *emit, void *arg);
void dp_decoder_destroy(struct dp_decoder **d);
/** Decode one access unit; frames come out through the callback. 0 or -errno (counted). */
int dp_decoder_push(struct dp_decoder *d, const struct dp_au *au);
/** Drain the frames the decoder still holds (end of stream). */
void dp_decoder_flush(struct dp_decoder *d);
const struct dp_decode_stats *dp_decoder_stats(const struct dp_decoder *d);
/** True while NVDEC decodes for D (asked for, and no fallback so far). */
bool dp_decoder_on_device(const struct dp_decoder *d);
/** Why D decodes in software though NVDEC was asked for: one line; "" when it was not, or NVDEC runs. */
const char *dp_decoder_fallback(const struct dp_decoder *d);
/**
 * Reopen D in software from now on, WHY being the reason reported: what the old context held is
 * lost, frames are corrupt until the next key frame, and the parameter sets seen so far are given
 * to the new one (a camera may send them once only). dp_decoder_push does this itself after
 * DP_DECODE_HW_ERROR_LIMIT NVDEC failures in a row. Returns 0, or -ENOMEM/-EINVAL: D goes on as it was.
 */
int dp_decoder_reopen_sw(struct dp_decoder *d, const char *why);

/**
 * MD5 of a frame's pixels packed without padding, in hex (33 bytes with the NUL), as ffmpeg's
 * framemd5 muxer hashes a rawvideo packet; *SIZE (OUT) is that packet's size in bytes. A device
 * frame is downloaded and hashed in the software decoder's layout (NV12 unpacked to yuv420p:
 * H.264 and H.265 decoding are bit-exact, so both decoders give the same lines). -ENOMEM, -EIO.
 */
int dp_frame_md5(const struct dp_frame *frame, char hex[33], int *size /* OUT */);

/**
 * Copy a device frame's picture to the host: OUT (OUT) describes a host frame (NV12, on_device
 * false, cropped) whose AVFrame is *HOST, which the first call allocates (*HOST NULL) and later
 * calls reuse while the frame's size stays, so a camera's downloads allocate only when its stream
 * changes. OUT is valid until the next call with the same *HOST. *HOST is the caller's on every
 * return (free it with dp_frame_host_free); on error OUT is untouched. Returns 0, -EINVAL (not a
 * device frame), -ENOMEM, -EIO (the copy failed).
 */
int dp_frame_download(const struct dp_frame *frame, void **host, struct dp_frame *out /* OUT */);
/** Scrub and free a host frame of dp_frame_download (its pixels are biometric); sets *HOST = NULL. */
void dp_frame_host_free(void **host);

/* ---- The receive loop (DPDK) ------------------------------------------------------------------ */

/** One camera's counters, as the report shows them. */
struct dp_camera_report {
	char id[32];
	uint16_t dst_port;
	uint32_t ssrc;
	enum dp_codec codec;
	struct dp_rtp_stats rtp;
	uint64_t malformed;  /* RTP headers or payloads refused */
	uint64_t rtcp_sr;    /* RTCP sender reports used for wall-clock time */
	uint64_t frames_decoded;
	uint64_t frames_corrupt;
	uint64_t aus_dropped; /* access units a full decode ring or an empty pool made us drop */
	int width, height;
	bool nvdec;                /* decoded by NVDEC (at the end of the run); false: software */
	uint64_t frames_on_device; /* of frames_decoded, those handed on in device memory */
	uint64_t decode_hw_errors; /* access units or frames NVDEC failed on */
	uint64_t decode_fallbacks; /* 1 when NVDEC was asked for and the camera went to software */
	char decode_fallback[DP_DECODE_REASON_MAX]; /* why, in one line; "" when it did not */
};

/** Stage-wide counters of the receive path. */
struct dp_rx_report {
	uint64_t frames;       /* Ethernet frames received */
	uint64_t bytes;
	uint64_t not_udp;      /* ARP, ICMP, TCP, ... */
	uint64_t ip_fragments; /* counted and dropped */
	uint64_t malformed;    /* bad Ethernet/IP/UDP */
	uint64_t unknown_flow; /* UDP to a port that is no camera's */
	uint64_t rtcp;
	uint64_t answered;     /* ARP and ICMP echo replies sent */
	uint64_t mbuf_drops;   /* the NIC had no buffer (imissed + rx_nombuf) */
	double seconds;        /* wall time of the run */
	uint64_t tsc_cycles;   /* TSC cycles of the run */
};

struct dp_run_conf {
	const char *const *pcaps;  /* capture files, one net_pcap port each */
	unsigned n_pcaps;
	const char *const *ifaces; /* kernel interfaces, one net_af_packet port each (no DPDK NIC) */
	unsigned n_ifaces;
	unsigned seconds;          /* stop after this long (0: no limit) */
	const struct dp_sdp *sdp;  /* NULL: cameras found by (port, SSRC), PT 26 is MJPEG, others H.264 */
	bool until_eof;            /* stop when every capture is read (interfaces: 2 s of quiet) */
	const _Atomic bool *stop;  /* set by a signal handler; may be NULL with until_eof */
	struct dp_reorder_conf reorder;
	dp_frame_fn *on_frame;     /* each decoded frame, with the camera's index in *arg's order */
	void *on_frame_arg;
	bool decode;               /* false: depacketize only (benchmarks) */
	bool decode_cuda;          /* decode with NVDEC on CUDA device cuda_device; software where it
				      cannot start (dp_decoder_open) */
	unsigned cuda_device;
	unsigned frames_held;      /* frames of a camera on_frame's consumer may hold past the callback
				      (its analysis queue depth): NVDEC reserves as many surfaces. 0: 4 */
	unsigned decode_workers;   /* 0: decode on the RX lcore; N: N decode threads, fed by rings */
	bool rx_only;              /* receive and free, nothing else: testpmd rxonly's loop, the
				      benchmark's floor for the PMD's own cost */
	const char *eal_extra;     /* extra EAL arguments, space separated (may be NULL) */
	uint32_t local_ip;         /* IPv4 address answered for (ARP, ICMP echo), network order; 0: none */
	const char *tx_pcap;       /* net_pcap: where the first port's transmitted frames go (tests) */
};

/** The camera index of the frame being handed to on_frame (valid during the callback). */
unsigned dp_run_current_camera(void);

#define DP_MAX_CAMERAS 256

struct dp_run_report {
	unsigned n_cameras;
	struct dp_camera_report cameras[DP_MAX_CAMERAS];
	struct dp_rx_report rx;
	uint64_t decode_aus;
	uint64_t decode_errors;
	uint64_t decode_frames_on_device;
	uint64_t decode_hw_errors;
	unsigned decode_fallbacks; /* cameras decoded in software though NVDEC was asked for */
};

/**
 * Start DPDK's EAL (--no-huge, one lcore, a net_pcap port per capture and a net_af_packet port
 * per interface), receive every packet into the pipeline (parse, flow table, reorder,
 * depacketize) on this thread, decode here or on conf->decode_workers threads fed by rings, then
 * stop the ports and fill REPORT. on_frame runs on the decoding thread. EAL can start once per
 * process. Returns 0, or -errno with a one-line reason in ERR.
 */
int dp_run_pcap(const struct dp_run_conf *conf, struct dp_run_report *report /* OUT */, char *err, size_t errlen);

/* ---- RTSP (RFC 2326) client ------------------------------------------------------------------- */

/** One RTSP response, as dp_rtsp_response_parse() found it (pointers into the caller's buffer). */
struct dp_rtsp_response {
	int status;              /* 200, 401, ... */
	unsigned cseq;
	const char *body;        /* Content-Length bytes after the headers; NULL if none */
	size_t body_len;
	char session[128];       /* Session id, without ";timeout=" */
	unsigned session_timeout; /* seconds; 60 when the server says nothing (RFC 2326 12.37) */
	char content_base[512];
	char auth_scheme[8];     /* "Basic" or "Digest" from WWW-Authenticate ("" if none) */
	char realm[128];
	char nonce[128];
	uint16_t server_port;    /* Transport: server_port=A-B, A */
};

#define DP_RTSP_MAX_HEADER 8192
#define DP_RTSP_MAX_BODY 65536

/**
 * Parse one RTSP response from BUF[0..LEN). Returns the bytes it spans (headers and body) when
 * complete, 0 when more bytes are needed, -EBADMSG for anything that is not an RTSP/1.0
 * response or exceeds DP_RTSP_MAX_HEADER/DP_RTSP_MAX_BODY.
 */
int dp_rtsp_response_parse(const char *buf, size_t len, struct dp_rtsp_response *out /* OUT */);

struct dp_rtsp_conf {
	const char *url;          /* rtsp://[user[:password]@]host[:port]/path, read by vg_url_split() */
	const char *user;         /* overrides the URL's; may be NULL. Sent as is (already decoded) */
	const char *password;
	uint16_t client_port;     /* RTP of stream i goes to client_port + 2 i (RTCP one above) */
	unsigned timeout_ms;      /* per request; 0 means 5000 */
};

struct dp_rtsp;

/**
 * Connect, OPTIONS, DESCRIBE (answering a 401 with Basic or Digest once), SETUP of unicast RTP to
 * client_port for each video stream, PLAY. Credentials never appear in ERR or any log line.
 * Returns 0, or -ECONNREFUSED/-ETIMEDOUT/-EACCES (credentials refused)/-EBADMSG (garbage)/
 * -EPROTO (an error status) with a one-line reason in ERR.
 */
int dp_rtsp_open(struct dp_rtsp **out, const struct dp_rtsp_conf *conf, char *err, size_t errlen);
/** The session's streams (ports are the client ports RTP arrives on). */
const struct dp_sdp *dp_rtsp_sdp(const struct dp_rtsp *r);
/** Keep the session alive: a GET_PARAMETER when half the session timeout has passed since the
 *  last request (NOW_MS on any monotonic clock). 0, or -errno when the server is gone. */
int dp_rtsp_keepalive(struct dp_rtsp *r, uint64_t now_ms);
/** Whether the server is still there: -ECONNRESET once it closed the connection (a camera that
 *  rebooted), else 0. Does not block. */
int dp_rtsp_check(struct dp_rtsp *r);
/** TEARDOWN (best effort) and close; sets *R to NULL. */
void dp_rtsp_close(struct dp_rtsp **r);
/** How long to wait before reconnect attempt ATTEMPT (0, 1, ...): 250 ms doubling, at most 30 s. */
unsigned dp_rtsp_backoff_ms(unsigned attempt);

#endif /* DP_H */
