/*
 * Software decode with libavcodec, one decoder per camera, one thread each (the decode workers
 * run several). Corrupt frames: a frame is counted corrupt when its access unit was damaged, when
 * it follows a damaged one before the next key frame (its references are wrong; libavcodec
 * conceals), or when libavcodec itself flags it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/md5.h>

#include "dp.h"
#include "vg_base.h"

#define PTS_RING 64 /* access units in flight inside the decoder (reorder depth is at most 16) */

struct dp_decoder {
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVFrame *frame;
	dp_frame_fn *emit;
	void *arg;
	bool need_key;       /* loss seen; frames are corrupt until a clean key frame */
	bool have_ts;
	uint32_t last_ts;
	int64_t ext_ts;      /* the RTP timestamp unwrapped to 64 bits */
	struct {
		int64_t pts;
		bool corrupt;
	} ring[PTS_RING];
	unsigned ring_pos;
	struct dp_decode_stats stats;
};

static pthread_once_t av_quiet_once = PTHREAD_ONCE_INIT;

/* libavcodec would print a line per broken slice: a camera's garbage is counted, never logged. */
static void av_quiet(void)
{
	av_log_set_level(AV_LOG_QUIET);
}

int dp_decoder_create(struct dp_decoder **out, enum dp_codec codec, dp_frame_fn *emit, void *arg)
{
	enum AVCodecID id = codec == DP_CODEC_H264   ? AV_CODEC_ID_H264
			    : codec == DP_CODEC_H265 ? AV_CODEC_ID_HEVC
			    : codec == DP_CODEC_MJPEG ? AV_CODEC_ID_MJPEG
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
	d->ctx = avcodec_alloc_context3(c);
	d->pkt = av_packet_alloc();
	d->frame = av_frame_alloc();
	if (!d->ctx || !d->pkt || !d->frame)
		goto out_free;
	d->ctx->thread_count = 1;
	d->ctx->pkt_timebase = (AVRational){ 1, 90000 };
	if (avcodec_open2(d->ctx, c, NULL) < 0) {
		rc = -EINVAL;
		goto out_free;
	}
	d->emit = emit;
	d->arg = arg;
	*out = d;
	return 0;
out_free:
	av_frame_free(&d->frame);
	av_packet_free(&d->pkt);
	avcodec_free_context(&d->ctx);
	free(d);
	return rc;
}

void dp_decoder_destroy(struct dp_decoder **dp)
{
	struct dp_decoder *d = *dp;

	if (!d)
		return;
	av_frame_free(&d->frame);
	av_packet_free(&d->pkt);
	avcodec_free_context(&d->ctx);
	free(d);
	*dp = NULL;
}

const struct dp_decode_stats *dp_decoder_stats(const struct dp_decoder *d)
{
	return &d->stats;
}

static void drain(struct dp_decoder *d)
{
	while (avcodec_receive_frame(d->ctx, d->frame) == 0) {
		AVFrame *f = d->frame;
		bool corrupt = (f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags;
		int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;

		for (unsigned i = 0; i < PTS_RING; i++)
			if (d->ring[i].pts == pts) {
				corrupt |= d->ring[i].corrupt;
				break;
			}
		struct dp_frame out = {
			.avframe = f,
			.width = f->width,
			.height = f->height,
			.pix_fmt = f->format,
			.ts = (uint32_t)pts,
			.corrupt = corrupt,
		};
		d->stats.frames++;
		if (corrupt)
			d->stats.corrupt++;
		d->emit(d->arg, &out);
		av_frame_unref(f);
	}
}

int dp_decoder_push(struct dp_decoder *d, const struct dp_au *au)
{
	int rc;

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

	d->stats.aus++;
	/* libavcodec copies non-refcounted packet data; the AU buffer stays the depacketizer's. */
	d->pkt->data = (uint8_t *)au->data;
	d->pkt->size = (int)au->len;
	d->pkt->pts = d->ext_ts;
	d->pkt->dts = AV_NOPTS_VALUE;
	rc = avcodec_send_packet(d->ctx, d->pkt);
	av_packet_unref(d->pkt);
	if (rc == AVERROR(EAGAIN)) {
		drain(d);
		d->pkt->data = (uint8_t *)au->data;
		d->pkt->size = (int)au->len;
		d->pkt->pts = d->ext_ts;
		rc = avcodec_send_packet(d->ctx, d->pkt);
		av_packet_unref(d->pkt);
	}
	if (rc < 0) {
		d->stats.errors++;
		d->need_key = true;
	}
	drain(d);
	return rc < 0 ? -EBADMSG : 0;
}

void dp_decoder_flush(struct dp_decoder *d)
{
	avcodec_send_packet(d->ctx, NULL);
	drain(d);
	avcodec_flush_buffers(d->ctx);
}

int dp_frame_md5(const struct dp_frame *frame, char hex[33], int *size)
{
	const AVFrame *f = frame->avframe;
	int n = av_image_get_buffer_size(f->format, f->width, f->height, 1);
	uint8_t *buf, digest[16];

	if (n < 0)
		return -EINVAL;
	buf = malloc((size_t)n);
	if (!buf)
		return -ENOMEM;
	av_image_copy_to_buffer(buf, n, (const uint8_t *const *)f->data, f->linesize, f->format, f->width,
				f->height, 1);
	av_md5_sum(digest, buf, n);
	free(buf);
	for (int i = 0; i < 16; i++) {
		static const char hx[] = "0123456789abcdef";
		hex[2 * i] = hx[digest[i] >> 4];
		hex[2 * i + 1] = hx[digest[i] & 15];
	}
	hex[32] = 0;
	*size = n;
	return 0;
}
