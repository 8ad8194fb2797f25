/*
 * Decode with libavcodec, one decoder per camera, one thread each (the decode workers run
 * several): in software, or with NVDEC through libavcodec's CUDA hwaccel (dp.h, "Decode", says
 * what a device frame is and when a camera falls back to software). Corrupt frames: a frame is
 * counted corrupt when its access unit was damaged, when it follows a damaged one before the next
 * key frame (its references are wrong; libavcodec conceals), or when libavcodec itself flags it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/hwcontext.h>
#include <libavutil/imgutils.h>
#include <libavutil/md5.h>
#include <libavutil/pixdesc.h>

#include "dp.h"
#include "vg_base.h"
#include "vg_pool.h"

/* libavutil/hwcontext_cuda.h's flag (libavutil 57 ABI); that header needs CUDA's cuda.h, which the
 * dataplane does without. */
#ifndef AV_CUDA_USE_PRIMARY_CONTEXT
#define AV_CUDA_USE_PRIMARY_CONTEXT (1 << 0)
#endif

#define PTS_RING 64  /* access units in flight inside the decoder (reorder depth is at most 16) */
#define PS_MAX 1024  /* H.264/H.265 parameter sets kept for a software reopen (typically < 100 bytes) */
#define FRAMES_HELD_DEFAULT 4

struct dp_decoder {
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVFrame *frame;
	const AVCodec *codec;
	dp_frame_fn *emit;
	void *arg;
	struct dp_decoder_conf conf;
	AVBufferRef *hw_device; /* NVDEC's CUDA device while NVDEC may decode; NULL: software */
	bool hw_chosen;         /* get_format chose AV_PIX_FMT_CUDA, and no device frame came since */
	unsigned hw_error_run;  /* NVDEC failures in a row: DP_DECODE_HW_ERROR_LIMIT reopens in software */
	bool need_key;          /* loss seen; frames are corrupt until a clean key frame */
	bool have_ts;
	uint32_t last_ts;
	int64_t ext_ts;         /* the RTP timestamp unwrapped to 64 bits */
	struct {
		int64_t pts;
		bool corrupt;
	} ring[PTS_RING];
	unsigned ring_pos;
	/* The latest parameter sets (Annex B), given as extradata to a software decoder that takes
	 * over mid-stream: a camera may send them only once, or only in its SDP. */
	uint8_t ps[PS_MAX];
	size_t ps_len;
	char fallback[DP_DECODE_REASON_MAX];
	struct dp_decode_stats stats;
};

static pthread_once_t av_quiet_once = PTHREAD_ONCE_INIT;

/* libavcodec would print a line per broken slice: a camera's garbage is counted, never logged. */
static void av_quiet(void)
{
	av_log_set_level(AV_LOG_QUIET);
}

/* From now on D decodes in software; WHY (printf-style) is the one line the report shows. */
static void VG_PRINTF(2, 3) fall_back(struct dp_decoder *d, const char *why, ...)
{
	va_list ap;

	va_start(ap, why);
	vsnprintf(d->fallback, sizeof(d->fallback), why, ap);
	va_end(ap);
	for (char *p = d->fallback; *p; p++) /* it goes into JSON and a log line as it is */
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '?';
	d->stats.fallbacks = 1;
	av_buffer_unref(&d->hw_device);
	d->hw_chosen = false;
}

static bool pix_fmt_is_hw(enum AVPixelFormat f)
{
	const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(f);

	return desc && (desc->flags & AV_PIX_FMT_FLAG_HWACCEL);
}

/*
 * libavcodec's get_format, on the decoding thread when a stream's parameters arrive: NVDEC when
 * it is offered and its surfaces would be NV12, else the software format (the list's last entry,
 * libavcodec's sw_pix_fmt). When NVDEC's hwaccel fails to start after we chose it, libavcodec
 * calls this again without AV_PIX_FMT_CUDA in the list (decode.c ff_get_format), and the camera
 * goes on in software in the same context.
 */
static enum AVPixelFormat pick_format(AVCodecContext *ctx, const enum AVPixelFormat *fmts)
{
	struct dp_decoder *d = ctx->opaque;
	enum AVPixelFormat sw = AV_PIX_FMT_NONE;
	bool cuda = false;

	for (const enum AVPixelFormat *f = fmts; *f != AV_PIX_FMT_NONE; f++) {
		if (*f == AV_PIX_FMT_CUDA)
			cuda = true;
		if (!pix_fmt_is_hw(*f))
			sw = *f;
	}
	if (!d->hw_device)
		return sw;
	const char *profile = avcodec_profile_name(ctx->codec_id, ctx->profile);
	const char *sw_name = av_get_pix_fmt_name(sw);
	if (!cuda) {
		if (d->hw_chosen)
			fall_back(d, "NVDEC could not start on %s %s %dx%d with %d surfaces for the consumer "
				  "(libavcodec's CUDA hwaccel init failed)", d->codec->name, profile ? profile : "",
				  ctx->coded_width, ctx->coded_height, ctx->extra_hw_frames);
		else
			fall_back(d, "libavcodec offers no CUDA hwaccel for %s %s %s", d->codec->name,
				  profile ? profile : "", sw_name ? sw_name : "?");
		return sw;
	}
	if (sw != AV_PIX_FMT_YUV420P && sw != AV_PIX_FMT_YUVJ420P) {
		fall_back(d, "%s %s is %s: NVDEC's surfaces would not be NV12 (only NV12 is handed on)",
			  d->codec->name, profile ? profile : "", sw_name ? sw_name : "?");
		return sw;
	}
	d->hw_chosen = true;
	return AV_PIX_FMT_CUDA;
}

/* A libavcodec context for D: NVDEC's when d->hw_device, else software (with the parameter sets
 * seen so far as extradata, for a decoder that takes over mid-stream). */
static int ctx_open(struct dp_decoder *d)
{
	AVCodecContext *ctx = avcodec_alloc_context3(d->codec);

	if (!ctx)
		return -ENOMEM;
	ctx->thread_count = 1;
	ctx->pkt_timebase = (AVRational){ 1, 90000 };
	ctx->opaque = d;
	if (d->hw_device) {
		ctx->hw_device_ctx = av_buffer_ref(d->hw_device);
		if (!ctx->hw_device_ctx)
			goto out_free;
		ctx->get_format = pick_format;
		ctx->extra_hw_frames = (int)(d->conf.frames_held ? d->conf.frames_held : FRAMES_HELD_DEFAULT);
	} else if (d->ps_len) {
		ctx->extradata = av_mallocz(d->ps_len + AV_INPUT_BUFFER_PADDING_SIZE);
		if (!ctx->extradata)
			goto out_free;
		memcpy(ctx->extradata, d->ps, d->ps_len);
		ctx->extradata_size = (int)d->ps_len;
	}
	if (avcodec_open2(ctx, d->codec, NULL) < 0) {
		avcodec_free_context(&ctx);
		return -EINVAL;
	}
	d->ctx = ctx;
	return 0;
out_free:
	avcodec_free_context(&ctx);
	return -ENOMEM;
}

/* Whether the shared library NAME can be loaded here (a probe for the one-line reason only). */
static bool lib_present(const char *name)
{
	void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);

	if (h)
		dlclose(h);
	return h != NULL;
}

/* Open NVDEC's device for D, or record why not (D then decodes in software). */
static void hw_open(struct dp_decoder *d)
{
	char dev[16];
	int rc;

	if (d->conf.codec == DP_CODEC_MJPEG) {
		fall_back(d, "mjpeg is decoded in software: JPEG decoders are not bit-exact with each other");
		return;
	}
	snprintf(dev, sizeof(dev), "%u", d->conf.cuda_device);
	rc = av_hwdevice_ctx_create(&d->hw_device, AV_HWDEVICE_TYPE_CUDA, dev, NULL, AV_CUDA_USE_PRIMARY_CONTEXT);
	if (rc < 0) {
		d->hw_device = NULL;
		if (rc == AVERROR(ENOMEM))
			fall_back(d, "no memory for CUDA device %u", d->conf.cuda_device);
		else if (!lib_present("libcuda.so.1"))
			fall_back(d, "no NVIDIA driver (libcuda.so.1 cannot be loaded)");
		else
			fall_back(d, "CUDA device %u cannot be opened (no such device, or the driver refused it)",
				  d->conf.cuda_device);
		return;
	}
	if (!lib_present("libnvcuvid.so.1"))
		fall_back(d, "no NVDEC library (libnvcuvid.so.1 cannot be loaded)");
}

int dp_decoder_open(struct dp_decoder **out, const struct dp_decoder_conf *conf, dp_frame_fn *emit, void *arg)
{
	enum AVCodecID id = conf->codec == DP_CODEC_H264   ? AV_CODEC_ID_H264
			    : conf->codec == DP_CODEC_H265 ? AV_CODEC_ID_HEVC
			    : conf->codec == DP_CODEC_MJPEG ? AV_CODEC_ID_MJPEG
							    : AV_CODEC_ID_NONE;
	const AVCodec *c = avcodec_find_decoder(id);
	struct dp_decoder *d;
	int rc = -ENOMEM;

	if (id == AV_CODEC_ID_NONE)
		return -EINVAL;
	pthread_once(&av_quiet_once, av_quiet);
	if (!c)
		return -ENOTSUP;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->codec = c;
	d->conf = *conf;
	d->pkt = av_packet_alloc();
	d->frame = av_frame_alloc();
	if (!d->pkt || !d->frame)
		goto out_free;
	if (conf->cuda)
		hw_open(d);
	rc = ctx_open(d);
	if (rc < 0 && d->hw_device) {
		/* libavcodec would not open a context with the device: NVDEC cannot start here */
		fall_back(d, "libavcodec refused a %s decoder with CUDA device %u", c->name, conf->cuda_device);
		rc = ctx_open(d);
	}
	if (rc < 0)
		goto out_free;
	d->emit = emit;
	d->arg = arg;
	*out = d;
	return 0;
out_free:
	av_buffer_unref(&d->hw_device);
	av_frame_free(&d->frame);
	av_packet_free(&d->pkt);
	free(d);
	return rc;
}

int dp_decoder_create(struct dp_decoder **out, enum dp_codec codec, dp_frame_fn *emit, void *arg)
{
	struct dp_decoder_conf conf = { .codec = codec };

	return dp_decoder_open(out, &conf, emit, arg);
}

void dp_decoder_destroy(struct dp_decoder **dp)
{
	struct dp_decoder *d = *dp;

	if (!d)
		return;
	av_frame_free(&d->frame);
	av_packet_free(&d->pkt);
	avcodec_free_context(&d->ctx);
	av_buffer_unref(&d->hw_device);
	free(d);
	*dp = NULL;
}

const struct dp_decode_stats *dp_decoder_stats(const struct dp_decoder *d)
{
	return &d->stats;
}

bool dp_decoder_on_device(const struct dp_decoder *d)
{
	return d->hw_device != NULL;
}

const char *dp_decoder_fallback(const struct dp_decoder *d)
{
	return d->fallback;
}

/* Hand on every frame libavcodec has ready. Returns 0, or the error avcodec_receive_frame gave
 * (NVDEC maps a frame there: it can fail). */
static int drain(struct dp_decoder *d)
{
	int rc;

	while ((rc = avcodec_receive_frame(d->ctx, d->frame)) == 0) {
		AVFrame *f = d->frame;
		bool corrupt = (f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags;
		bool on_device = f->format == AV_PIX_FMT_CUDA && f->hw_frames_ctx;
		int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;

		for (unsigned i = 0; i < PTS_RING; i++)
			if (d->ring[i].pts == pts) {
				corrupt |= d->ring[i].corrupt;
				break;
			}
		struct dp_frame out = {
			.avframe = f,
			.width = f->width - (on_device ? (int)f->crop_left : 0),
			.height = f->height - (on_device ? (int)f->crop_top : 0),
			.pix_fmt = f->format,
			.ts = (uint32_t)pts,
			.corrupt = corrupt,
			.on_device = on_device,
			.cuda_device = on_device ? (int)d->conf.cuda_device : -1,
			.sw_pix_fmt = f->format,
		};
		if (on_device) {
			out.sw_pix_fmt = ((const AVHWFramesContext *)(const void *)f->hw_frames_ctx->data)->sw_format;
			out.crop_left = (int)f->crop_left;
			out.crop_top = (int)f->crop_top;
			d->stats.frames_on_device++;
			d->hw_error_run = 0;
			d->hw_chosen = false; /* it started: a later get_format is a new stream's */
		}
		d->stats.frames++;
		if (corrupt)
			d->stats.corrupt++;
		d->emit(d->arg, &out);
		av_frame_unref(f);
	}
	return rc == AVERROR(EAGAIN) || rc == AVERROR_EOF ? 0 : rc;
}

/* The next Annex B start code (00 00 01) at or after P, or END. */
static const uint8_t *next_start(const uint8_t *p, const uint8_t *end)
{
	for (; end - p >= 3; p++)
		if (p[0] == 0 && p[1] == 0 && p[2] == 1)
			return p;
	return end;
}

/*
 * The parameter sets at the start of access unit AU, kept when they include a sequence parameter
 * set. Reads only the NALs ahead of the first picture NAL (a few hundred bytes at most).
 */
static void ps_keep(struct dp_decoder *d, const struct dp_au *au)
{
	const uint8_t *end = au->data + au->len;
	bool h264 = d->conf.codec == DP_CODEC_H264;
	uint8_t tmp[PS_MAX];
	size_t n = 0;
	bool sps = false;

	if (!h264 && d->conf.codec != DP_CODEC_H265)
		return;
	for (const uint8_t *p = next_start(au->data, end); end - p > 3;) {
		const uint8_t *nal = p + 3;
		unsigned type = h264 ? nal[0] & 0x1f : (nal[0] >> 1) & 0x3f;
		if (h264 ? type >= 1 && type <= 5 : type <= 31)
			break; /* a picture: parameter sets come before it */
		p = next_start(nal, end);
		if (!(h264 ? type == 7 || type == 8 : type >= 32 && type <= 34))
			continue;
		size_t len = (size_t)(p - nal);
		while (len && nal[len - 1] == 0) /* the next start code's leading zero */
			len--;
		if (n + 4 + len > sizeof(tmp))
			return; /* larger than any camera's: keep the old ones */
		memcpy(tmp + n, "\0\0\0\1", 4);
		memcpy(tmp + n + 4, nal, len);
		n += 4 + len;
		sps |= h264 ? type == 7 : type == 33;
	}
	if (sps) {
		memcpy(d->ps, tmp, n);
		d->ps_len = n;
	}
}

int dp_decoder_reopen_sw(struct dp_decoder *d, const char *why)
{
	AVCodecContext *old = d->ctx;
	int rc;

	fall_back(d, "%s", why);
	d->ctx = NULL;
	rc = ctx_open(d);
	if (rc < 0) {
		d->ctx = old; /* keep what we had: its errors go on being counted */
		return rc;
	}
	avcodec_free_context(&old);
	d->need_key = true;
	d->hw_error_run = 0;
	return 0;
}

/* RC from libavcodec on a context NVDEC decodes for: a bitstream error is the camera's; anything
 * else (CUDA errors, no surfaces left, a failed map) is NVDEC's, and enough in a row end it. */
static void hw_error(struct dp_decoder *d, int rc)
{
	char why[DP_DECODE_REASON_MAX];

	if (!d->ctx->hwaccel || rc == AVERROR_INVALIDDATA)
		return;
	d->stats.hw_errors++;
	if (++d->hw_error_run < DP_DECODE_HW_ERROR_LIMIT)
		return;
	snprintf(why, sizeof(why), "NVDEC failed %u times in a row mid-stream (%s): reopened in software",
		 d->hw_error_run, av_err2str(rc));
	dp_decoder_reopen_sw(d, why);
}

static int send(struct dp_decoder *d, const struct dp_au *au)
{
	/* libavcodec copies non-refcounted packet data; the AU buffer stays the depacketizer's. */
	d->pkt->data = (uint8_t *)au->data;
	d->pkt->size = (int)au->len;
	d->pkt->pts = d->ext_ts;
	d->pkt->dts = AV_NOPTS_VALUE;
	int rc = avcodec_send_packet(d->ctx, d->pkt);
	av_packet_unref(d->pkt);
	return rc;
}

int dp_decoder_push(struct dp_decoder *d, const struct dp_au *au)
{
	int rc, drc;

	if (!d->have_ts) {
		d->have_ts = true;
		d->ext_ts = au->ts;
	} else {
		d->ext_ts += (int32_t)(au->ts - d->last_ts);
	}
	d->last_ts = au->ts;
	if (au->flags & DP_AU_DAMAGED)
		d->need_key = true;
	else if (au->flags & DP_AU_KEY)
		d->need_key = false;
	d->ring[d->ring_pos].pts = d->ext_ts;
	d->ring[d->ring_pos].corrupt = d->need_key || (au->flags & DP_AU_DAMAGED);
	d->ring_pos = (d->ring_pos + 1) % PTS_RING;
	if (!(au->flags & DP_AU_DAMAGED))
		ps_keep(d, au);

	d->stats.aus++;
	rc = send(d, au);
	if (rc == AVERROR(EAGAIN)) {
		drc = drain(d);
		if (drc < 0)
			hw_error(d, drc);
		rc = send(d, au);
	}
	if (rc < 0) {
		d->stats.errors++;
		d->need_key = true;
		hw_error(d, rc);
	}
	drc = drain(d);
	if (drc < 0) {
		if (rc >= 0)
			d->stats.errors++;
		hw_error(d, drc);
	}
	return rc < 0 || drc < 0 ? -EBADMSG : 0;
}

void dp_decoder_flush(struct dp_decoder *d)
{
	avcodec_send_packet(d->ctx, NULL);
	drain(d);
	avcodec_flush_buffers(d->ctx);
}

static void md5_hex(struct AVMD5 *md5, char hex[33])
{
	uint8_t digest[16];

	av_md5_final(md5, digest);
	for (int i = 0; i < 16; i++) {
		static const char hx[] = "0123456789abcdef";
		hex[2 * i] = hx[digest[i] >> 4];
		hex[2 * i + 1] = hx[digest[i] & 15];
	}
	hex[32] = 0;
}

/* Host NV12 planes of a W x H picture hashed in yuv420p's packing (av_image_copy_to_buffer's):
 * Y rows, then U rows, then V rows. Returns the packed size, or -ENOMEM. */
static int md5_nv12(const AVFrame *f, int w, int h, struct AVMD5 *md5)
{
	int cw = (w + 1) / 2, ch = (h + 1) / 2;
	uint8_t *row = malloc((size_t)cw);

	if (!row)
		return -ENOMEM;
	for (int y = 0; y < h; y++)
		av_md5_update(md5, f->data[0] + (ptrdiff_t)y * f->linesize[0], w);
	for (int plane = 0; plane < 2; plane++)
		for (int y = 0; y < ch; y++) {
			const uint8_t *uv = f->data[1] + (ptrdiff_t)y * f->linesize[1];
			for (int x = 0; x < cw; x++)
				row[x] = uv[2 * x + plane];
			av_md5_update(md5, row, cw);
		}
	free(row);
	return w * h + 2 * cw * ch;
}

/* A device frame hashed as the software decoder gives it: downloaded, then NV12 as yuv420p. */
static int md5_device(const struct dp_frame *frame, struct AVMD5 *md5, int *size)
{
	void *host = NULL;
	struct dp_frame h;
	int rc;

	if (frame->sw_pix_fmt != AV_PIX_FMT_NV12)
		return -ENOTSUP;
	rc = dp_frame_download(frame, &host, &h);
	if (rc == 0) {
		rc = md5_nv12(h.avframe, h.width, h.height, md5);
		if (rc >= 0)
			*size = rc;
	}
	dp_frame_host_free(&host);
	return rc < 0 ? rc : 0;
}

int dp_frame_md5(const struct dp_frame *frame, char hex[33], int *size)
{
	const AVFrame *f = frame->avframe;
	struct AVMD5 *md5 = av_md5_alloc();
	int n = 0, rc = 0;

	if (!md5)
		return -ENOMEM;
	av_md5_init(md5);
	if (frame->on_device) {
		rc = md5_device(frame, md5, &n);
	} else {
		uint8_t *buf;
		n = av_image_get_buffer_size(f->format, f->width, f->height, 1);
		if (n < 0) {
			rc = -EINVAL;
			goto out_free;
		}
		buf = malloc((size_t)n);
		if (!buf) {
			rc = -ENOMEM;
			goto out_free;
		}
		av_image_copy_to_buffer(buf, n, (const uint8_t *const *)f->data, f->linesize, f->format, f->width,
					f->height, 1);
		av_md5_update(md5, buf, n);
		free(buf);
	}
	if (rc == 0) {
		md5_hex(md5, hex);
		*size = n;
	}
out_free:
	av_free(md5);
	return rc;
}

int dp_frame_download(const struct dp_frame *frame, void **host, struct dp_frame *out)
{
	const AVFrame *src = frame->avframe;
	AVFrame *dst = *host;
	bool crop = frame->crop_left || frame->crop_top;

	if (!frame->on_device)
		return -EINVAL;
	if (!dst && !(dst = *host = av_frame_alloc()))
		return -ENOMEM;
	/* Reuse the buffers while the size holds (a cropped frame's data pointers were moved: anew). */
	if (!dst->buf[0] || crop || dst->format != frame->sw_pix_fmt || dst->width != src->width ||
	    dst->height != src->height) {
		av_frame_unref(dst);
		dst->format = frame->sw_pix_fmt;
		dst->width = src->width;
		dst->height = src->height;
		if (av_frame_get_buffer(dst, 0) < 0)
			return -ENOMEM;
	}
	/* Device to host: libavutil's CUDA transfer waits for the copy (cuStreamSynchronize). */
	if (av_hwframe_transfer_data(dst, src, 0) < 0)
		return -EIO;
	if (crop) {
		dst->crop_left = (size_t)frame->crop_left;
		dst->crop_top = (size_t)frame->crop_top;
		if (av_frame_apply_cropping(dst, AV_FRAME_CROP_UNALIGNED) < 0)
			return -EIO;
	}
	*out = *frame;
	out->avframe = dst;
	out->width = dst->width;
	out->height = dst->height;
	out->pix_fmt = dst->format;
	out->sw_pix_fmt = dst->format;
	out->on_device = false;
	out->cuda_device = -1;
	out->crop_left = out->crop_top = 0;
	return 0;
}

void dp_frame_host_free(void **host)
{
	AVFrame *f = *host;

	if (!f)
		return;
	for (unsigned i = 0; i < VG_ARRAY_SIZE(f->buf) && f->buf[i]; i++)
		vg_scrub(f->buf[i]->data, f->buf[i]->size);
	av_frame_free(&f);
	*host = NULL;
}
