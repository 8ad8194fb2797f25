/*
 * The CUDA backend's preprocessing kernel (gpu_cuda_to_batch: colour conversion, crop, pad and
 * resize in one pass from a decoder's frame), run by the host emulation (device -1): no GPU needed.
 *   - I420 and NV12 frames convert to the BT.601 limited-range pixels an independent formula here
 *     gives, exactly, and within 3 levels (mean under 0.5) of libswscale's conversion, the CPU
 *     pipeline's, which interpolates the chroma;
 *   - toBatchTensor from the frame equals gpu/'s gpu_to_batch_ref on those pixels bit for bit,
 *     for the detector (512, bottom/right padding), landmark (112) and descriptor (150, centred)
 *     inputs, on square, wide and tall regions at odd offsets;
 *   - RGB24 frames give gpu_to_batch_ref's values; bad regions and formats are refused.
 */
#include <errno.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../gpu/gpu_int.h"
#include "gpu_cuda.h"
#include "vg_test.h"

#define W 173
#define H 131

static int clamp(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/*
 * The independent formula's pixels (RGB, from Y, U, V, which the kernel gives exactly) against
 * libswscale's, as the CPU pipeline converts other formats.
 */
static void against_swscale(const uint8_t *y, const uint8_t *u, const uint8_t *v, const uint8_t *rgb)
{
	static uint8_t sws_rgb[W * H * 3];
	const int cw = (W + 1) / 2;
	struct SwsContext *sc = sws_getContext(W, H, AV_PIX_FMT_YUV420P, W, H, AV_PIX_FMT_RGB24, SWS_BILINEAR,
					       NULL, NULL, NULL);
	const uint8_t *src[4] = {y, u, v, NULL};
	int sp[4] = {W, cw, cw, 0}, dp[4] = {W * 3, 0, 0, 0};
	uint8_t *dst[4] = {sws_rgb, NULL, NULL, NULL};
	double sum = 0;
	int maxd = 0;

	CHECK(sc != NULL);
	if (sc) {
		sws_scale(sc, src, sp, 0, H, dst, dp);
		sws_freeContext(sc);
		for (size_t i = 0; i < sizeof(sws_rgb); i++) {
			int d = abs((int)rgb[i] - sws_rgb[i]);

			maxd = d > maxd ? d : maxd;
			sum += d;
		}
		printf("BT.601 conversion against libswscale's: largest difference %d levels, mean %.3f\n", maxd,
		       sum / sizeof(sws_rgb));
		CHECK(maxd <= 3);
		CHECK(sum / sizeof(sws_rgb) < 0.5);
	}
}

int main(void)
{
	static uint8_t y[W * H], u[((W + 1) / 2) * ((H + 1) / 2)], v[sizeof(u)], uv[2 * sizeof(u)];
	static uint8_t rgb[W * H * 3];
	static float a[512 * 512 * 3], b[512 * 512 * 3];
	const int cw = (W + 1) / 2;
	unsigned s = 1;
	struct gpu_cuda_frame i420 = {{y, u, v}, {W, cw, cw}, GPU_CUDA_I420, W, H, 0};
	struct gpu_cuda_frame nv12 = {{y, uv, NULL}, {W, 2 * cw, 0}, GPU_CUDA_NV12, W, H, 0};
	struct gpu_cuda_frame packed = {{rgb, NULL, NULL}, {W * 3, 0, 0}, GPU_CUDA_RGB24, W, H, 0};

	/* a smooth picture with noise, in the legal ranges */
	for (int r = 0; r < H; r++)
		for (int c = 0; c < W; c++) {
			s = s * 1103515245u + 12345u;
			y[r * W + c] = (uint8_t)(16 + (r * 150 / H + c * 60 / W + (s >> 16) % 10));
		}
	/* chroma smooth, as in camera pictures, so that swscale's chroma interpolation and the
	 * kernel's nearest chroma see nearly the same colour */
	for (int i = 0; i < (int)sizeof(u); i++) {
		int bx = i % cw, by = i / cw;

		u[i] = (uint8_t)(90 + bx * 40 / cw + by * 30 / ((H + 1) / 2));
		v[i] = (uint8_t)(170 - bx * 50 / cw - by * 20 / ((H + 1) / 2));
		uv[2 * i] = u[i];
		uv[2 * i + 1] = v[i];
	}
	/* the independent formula: BT.601 limited range, 8.8 fixed point, nearest chroma */
	for (int r = 0; r < H; r++)
		for (int c = 0; c < W; c++) {
			int C = y[r * W + c] - 16, D = u[(r / 2) * cw + c / 2] - 128, E = v[(r / 2) * cw + c / 2] - 128;
			uint8_t *p = rgb + ((size_t)r * W + c) * 3;

			p[0] = (uint8_t)clamp((298 * C + 409 * E + 128) >> 8);
			p[1] = (uint8_t)clamp((298 * C - 100 * D - 208 * E + 128) >> 8);
			p[2] = (uint8_t)clamp((298 * C + 516 * D + 128) >> 8);
		}
	/* the kernel's own pixels: a square region resized to its own size is the pixels themselves */
	CHECK_EQ_INT(gpu_cuda_to_batch(-1, &i420, 0, 0, H, H, H, 0, a), 0);
	{
		int bad = 0;

		for (int r = 0; r < H; r++)
			for (int c = 0; c < H; c++)
				for (int ch = 0; ch < 3; ch++)
					bad += a[((size_t)r * H + c) * 3 + ch] != (float)rgb[((size_t)r * W + c) * 3 + ch];
		CHECK_EQ_INT(bad, 0);
	}
	/* the CPU backend's conversion of a camera frame (gpu.h), I420 and NV12: the same pixels */
	{
		static uint8_t cpu_rgb[W * H * 3];

		CHECK_EQ_INT(gpu_yuv420_to_rgb(y, W, u, v, cw, W, H, cpu_rgb), 0);
		CHECK(memcmp(cpu_rgb, rgb, sizeof(rgb)) == 0);
		memset(cpu_rgb, 0, sizeof(cpu_rgb));
		CHECK_EQ_INT(gpu_yuv420_to_rgb(y, W, uv, NULL, 2 * cw, W, H, cpu_rgb), 0);
		CHECK(memcmp(cpu_rgb, rgb, sizeof(rgb)) == 0);
		CHECK_EQ_INT(gpu_yuv420_to_rgb(y, W - 1, u, v, cw, W, H, cpu_rgb), -EINVAL);   /* pitch too short */
	}
	against_swscale(y, u, v, rgb);
	/* toBatchTensor straight from the frame = the reference on the converted pixels */
	{
		static const int cases[][6] = {
			/* x, y, w, h, size, center */
			{0, 0, W, H, 512, 0},  {17, 9, 61, 80, 112, 1}, {30, 21, 95, 57, 150, 1},
			{1, 1, 64, 64, 150, 1}, {100, 50, 73, 81, 112, 1}, {0, 0, W, H, 150, 0},
		};

		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			const int *c = cases[k];
			size_t n = (size_t)c[4] * c[4] * 3;
			int diff = 0;

			gpu_to_batch_ref(rgb + ((size_t)c[1] * W + c[0]) * 3, c[2], c[3], (size_t)W * 3, c[4], c[5], b);
			CHECK_EQ_INT(gpu_cuda_to_batch(-1, &i420, c[0], c[1], c[2], c[3], c[4], c[5], a), 0);
			diff += memcmp(a, b, n * sizeof(float)) != 0;
			CHECK_EQ_INT(gpu_cuda_to_batch(-1, &nv12, c[0], c[1], c[2], c[3], c[4], c[5], a), 0);
			diff += memcmp(a, b, n * sizeof(float)) != 0;
			CHECK_EQ_INT(gpu_cuda_to_batch(-1, &packed, c[0], c[1], c[2], c[3], c[4], c[5], a), 0);
			diff += memcmp(a, b, n * sizeof(float)) != 0;
			printf("region %dx%d at (%d,%d) -> %d%s: I420, NV12, RGB24 %s the reference\n", c[2], c[3], c[0],
			       c[1], c[4], c[5] ? " centred" : "", diff ? "DIFFER from" : "equal");
			CHECK_EQ_INT(diff, 0);
		}
	}
	/* bad input is refused */
	CHECK_EQ_INT(gpu_cuda_to_batch(-1, &i420, 100, 0, 100, 10, 112, 1, a), -EINVAL);   /* past the edge */
	CHECK_EQ_INT(gpu_cuda_to_batch(-1, &i420, 0, 0, 0, 10, 112, 1, a), -EINVAL);
	CHECK_EQ_INT(gpu_cuda_to_batch(-1, &i420, 0, 0, 10, 10, 0, 1, a), -EINVAL);
	{
		struct gpu_cuda_frame bad = i420;

		bad.format = 9;
		CHECK_EQ_INT(gpu_cuda_to_batch(-1, &bad, 0, 0, 10, 10, 112, 1, a), -EINVAL);
		bad = i420;
		bad.plane[2] = NULL;
		CHECK_EQ_INT(gpu_cuda_to_batch(-1, &bad, 0, 0, 10, 10, 112, 1, a), -EINVAL);
	}
	return vg_test_exit();
}
