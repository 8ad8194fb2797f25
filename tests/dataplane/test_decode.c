/*
 * Decode: the NVDEC switch (dp_decoder_open with cuda) gives the software decoder's frames, bit
 * for bit, on the device where one is and in software with a one-line reason where not; JPEG stays
 * in software; a decoder reopened in software mid-stream takes over at the next key frame with
 * the parameter sets it saw once only. The stream is H.264 from libx264 through libavcodec (skip
 * without it), its parameter sets only in front of the first access unit, as an SDP gives them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/opt.h>

#include "dp.h"
#include "vg_test.h"

#define N_FRAMES 30
#define GOP 10
#define W 160
#define H 120

struct au {
	uint8_t *data;
	size_t len;
	unsigned flags;
};
static struct au aus[N_FRAMES];

struct seen {
	unsigned n, corrupt, on_device;
	char md5[N_FRAMES][33];
	bool got[N_FRAMES];
};

static void on_frame(void *arg, const struct dp_frame *f)
{
	struct seen *s = arg;
	unsigned i = f->ts / 3000;
	int size;

	s->n++;
	s->corrupt += f->corrupt;
	s->on_device += f->on_device;
	if (i >= N_FRAMES || s->got[i])
		return;
	s->got[i] = true;
	CHECK(dp_frame_md5(f, s->md5[i], &size) == 0);
	CHECK_EQ_INT(size, W * H * 3 / 2);
}

/* N_FRAMES of a moving pattern, GOP frames a group, no B-frames; SPS/PPS only before AU 0. */
static int encode(void)
{
	const AVCodec *c = avcodec_find_encoder_by_name("libx264");
	AVCodecContext *ctx;
	AVFrame *f = av_frame_alloc();
	AVPacket *pkt = av_packet_alloc();
	unsigned n = 0;

	if (!c)
		return -ENOENT;
	ctx = avcodec_alloc_context3(c);
	ctx->width = W;
	ctx->height = H;
	ctx->pix_fmt = AV_PIX_FMT_YUV420P;
	ctx->time_base = (AVRational){ 1, 10 };
	ctx->gop_size = GOP;
	ctx->keyint_min = GOP;
	ctx->max_b_frames = 0;
	ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; /* parameter sets in extradata, not in every IDR */
	av_opt_set(ctx->priv_data, "preset", "ultrafast", 0);
	av_opt_set(ctx->priv_data, "x264-params", "scenecut=0", 0);
	if (avcodec_open2(ctx, c, NULL) < 0)
		return -EINVAL;
	f->format = AV_PIX_FMT_YUV420P;
	f->width = W;
	f->height = H;
	av_frame_get_buffer(f, 0);
	for (int i = 0; i <= N_FRAMES; i++) {
		if (i < N_FRAMES) {
			av_frame_make_writable(f);
			for (int y = 0; y < H; y++)
				for (int x = 0; x < W; x++)
					f->data[0][y * f->linesize[0] + x] = (uint8_t)(x * 2 + y + 5 * i);
			for (int p = 1; p < 3; p++)
				for (int y = 0; y < H / 2; y++)
					memset(f->data[p] + y * f->linesize[p], 128 + (p == 1 ? i : -i), W / 2);
			f->pts = i;
		}
		avcodec_send_frame(ctx, i < N_FRAMES ? f : NULL);
		while (avcodec_receive_packet(ctx, pkt) == 0 && n < N_FRAMES) {
			size_t pre = n == 0 ? (size_t)ctx->extradata_size : 0;
			aus[n].data = malloc(pre + (size_t)pkt->size);
			memcpy(aus[n].data, ctx->extradata, pre);
			memcpy(aus[n].data + pre, pkt->data, (size_t)pkt->size);
			aus[n].len = pre + (size_t)pkt->size;
			aus[n].flags = pkt->flags & AV_PKT_FLAG_KEY ? DP_AU_KEY : 0;
			n++;
			av_packet_unref(pkt);
		}
	}
	avcodec_free_context(&ctx);
	av_frame_free(&f);
	av_packet_free(&pkt);
	return n == N_FRAMES ? 0 : -EIO;
}

/* The whole stream through a decoder opened with CONF; REOPEN_AT > 0 reopens it in software there. */
static void run(const struct dp_decoder_conf *conf, struct seen *s, unsigned reopen_at, struct dp_decode_stats *st,
		char *fallback)
{
	struct dp_decoder *d = NULL;

	memset(s, 0, sizeof(*s));
	CHECK(dp_decoder_open(&d, conf, on_frame, s) == 0);
	if (!d)
		return;
	for (unsigned i = 0; i < N_FRAMES; i++) {
		if (reopen_at && i == reopen_at)
			CHECK(dp_decoder_reopen_sw(d, "test: reopened") == 0);
		struct dp_au au = { .data = aus[i].data, .len = aus[i].len, .ts = i * 3000, .flags = aus[i].flags };
		dp_decoder_push(d, &au);
	}
	dp_decoder_flush(d);
	*st = *dp_decoder_stats(d);
	snprintf(fallback, DP_DECODE_REASON_MAX, "%s", dp_decoder_fallback(d));
	CHECK(dp_decoder_on_device(d) == !fallback[0] || !conf->cuda);
	dp_decoder_destroy(&d);
	CHECK(d == NULL);
}

int main(void)
{
	static struct seen ref, got;
	struct dp_decode_stats st;
	char why[DP_DECODE_REASON_MAX];
	int rc;

	av_log_set_level(AV_LOG_QUIET); /* libx264 would describe its stream */
	rc = encode();

	if (rc == -ENOENT) {
		printf("SKIP: libavcodec has no libx264 encoder\n");
		return VG_TEST_SKIP;
	}
	CHECK(rc == 0);
	CHECK_EQ_INT(aus[GOP].flags, DP_AU_KEY);
	CHECK_EQ_INT(aus[GOP + 1].flags, 0);

	/* Software: every frame, clean, none on a device, no fallback (none was asked for). */
	struct dp_decoder_conf sw = { .codec = DP_CODEC_H264 };
	run(&sw, &ref, 0, &st, why);
	CHECK_EQ_INT(ref.n, N_FRAMES);
	CHECK_EQ_INT(ref.corrupt, 0);
	CHECK_EQ_INT(st.frames_on_device + st.fallbacks + st.hw_errors + st.errors, 0);
	CHECK(why[0] == 0);

	/* NVDEC asked for: on a GPU every frame on the device; elsewhere software, with a reason. The
	 * same pixels either way (H.264 is bit-exact; a device frame is hashed as yuv420p). */
	struct dp_decoder_conf cuda = { .codec = DP_CODEC_H264, .cuda = true, .cuda_device = 0, .frames_held = 4 };
	run(&cuda, &got, 0, &st, why);
	CHECK_EQ_INT(got.n, N_FRAMES);
	CHECK(memcmp(got.md5, ref.md5, sizeof(ref.md5)) == 0);
	if (why[0]) {
		printf("cuda:0 fell back: %s\n", why);
		CHECK_EQ_INT(st.fallbacks, 1);
		CHECK_EQ_INT(got.on_device + st.frames_on_device, 0);
	} else {
		printf("cuda:0: %u frames decoded on the device\n", got.on_device);
		CHECK_EQ_INT(got.on_device, N_FRAMES);
		CHECK_EQ_INT(st.frames_on_device, N_FRAMES);
		CHECK_EQ_INT(st.fallbacks + st.hw_errors, 0);
	}

	/* A device that is not there: software, with the reason, never an error. */
	cuda.cuda_device = 63;
	run(&cuda, &got, 0, &st, why);
	printf("cuda:63 fell back: %s\n", why);
	CHECK(why[0] && strchr(why, '\n') == NULL);
	CHECK_EQ_INT(st.fallbacks, 1);
	CHECK(memcmp(got.md5, ref.md5, sizeof(ref.md5)) == 0);

	/* JPEG: software, said so. */
	struct dp_decoder_conf mj = { .codec = DP_CODEC_MJPEG, .cuda = true };
	struct dp_decoder *d = NULL;
	CHECK(dp_decoder_open(&d, &mj, on_frame, &got) == 0);
	if (d) {
		CHECK(strstr(dp_decoder_fallback(d), "mjpeg") != NULL);
		CHECK(!dp_decoder_on_device(d));
		dp_decoder_destroy(&d);
	}

	/* Reopened in software mid-group (what a failing NVDEC gets): the new decoder never saw the
	 * parameter sets in band, yet from the next key frame on every frame is the reference's. */
	unsigned at = GOP + GOP / 2, next_key = 2 * GOP;
	run(&sw, &got, at, &st, why);
	CHECK(strcmp(why, "test: reopened") == 0);
	CHECK_EQ_INT(st.fallbacks, 1);
	for (unsigned i = 0; i < N_FRAMES; i++) {
		if (i < at || i >= next_key) {
			CHECK(got.got[i]);
			CHECK(strcmp(got.md5[i], ref.md5[i]) == 0);
		}
	}
	CHECK_EQ_INT(got.n - got.corrupt, at + (N_FRAMES - next_key)); /* the frames between are corrupt, if any */
	for (unsigned i = 0; i < N_FRAMES; i++)
		free(aus[i].data);
	return vg_test_exit();
}
