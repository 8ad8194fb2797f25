/*
 * common/vg_image: PNG decodes losslessly; JPEG decodes to libjpeg-turbo's default (ISLOW) pixels;
 * truncated, corrupt, foreign and oversized images are refused with a reason, never partly decoded.
 */
#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "vg_test.h"
#include "vg_image.h"

#define W 97
#define H 61

static void make_pattern(uint8_t *rgb)
{
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			uint8_t *p = rgb + (y * W + x) * 3;
			p[0] = (uint8_t)(x * 255 / (W - 1));
			p[1] = (uint8_t)(y * 255 / (H - 1));
			p[2] = (uint8_t)((x * 7 + y * 13) & 0xff);
		}
}

int main(void)
{
	static uint8_t rgb[W * H * 3];
	struct vg_image img = { 0 };
	char err[256];

	make_pattern(rgb);

	/* PNG: exact. */
	png_image png;
	memset(&png, 0, sizeof(png));
	png.version = PNG_IMAGE_VERSION;
	png.width = W;
	png.height = H;
	png.format = PNG_FORMAT_RGB;
	png_alloc_size_t png_len = 0;
	CHECK(png_image_write_to_memory(&png, NULL, &png_len, 0, rgb, 0, NULL));
	uint8_t *png_data = malloc(png_len);
	CHECK(png_image_write_to_memory(&png, png_data, &png_len, 0, rgb, 0, NULL));
	CHECK_EQ_INT(vg_image_sniff(png_data, png_len), VG_IMAGE_PNG);
	CHECK_EQ_INT(vg_image_decode(png_data, png_len, &img, err, sizeof(err)), 0);
	CHECK_EQ_INT(img.width, W);
	CHECK_EQ_INT(img.height, H);
	CHECK_EQ_INT(img.format, VG_IMAGE_PNG);
	CHECK(img.rgb && memcmp(img.rgb, rgb, sizeof(rgb)) == 0);
	char sha[65], sha2[65];
	vg_image_rgb_sha256(&img, sha);
	CHECK_EQ_INT(strlen(sha), 64);
	vg_image_release(&img);
	CHECK(img.rgb == NULL && img.width == 0);

	/* The sha covers the pixels: one changed byte changes it. */
	struct vg_image fake = { W, H, rgb, VG_IMAGE_PNG };
	vg_image_rgb_sha256(&fake, sha2);
	CHECK(strcmp(sha, sha2) == 0);
	rgb[100] ^= 1;
	vg_image_rgb_sha256(&fake, sha2);
	CHECK(strcmp(sha, sha2) != 0);
	rgb[100] ^= 1;

	/* Truncated PNG: refused. */
	CHECK_EQ_INT(vg_image_decode(png_data, png_len / 2, &img, err, sizeof(err)), -EBADMSG);
	CHECK(img.rgb == NULL);
	CHECK(strncmp(err, "corrupt PNG", 11) == 0);

	/* JPEG: equal to TurboJPEG's own default decode (ISLOW, fancy upsampling), 4:2:0. */
	tjhandle tjc = tjInitCompress(), tjd = tjInitDecompress();
	unsigned char *jpeg = NULL;
	unsigned long jpeg_len = 0;
	CHECK(tjCompress2(tjc, rgb, W, 0, H, TJPF_RGB, &jpeg, &jpeg_len, TJSAMP_420, 90, 0) == 0);
	static uint8_t ref[W * H * 3];
	CHECK(tjDecompress2(tjd, jpeg, jpeg_len, ref, W, 0, H, TJPF_RGB, 0) == 0);
	CHECK_EQ_INT(vg_image_decode(jpeg, jpeg_len, &img, err, sizeof(err)), 0);
	CHECK(img.rgb && memcmp(img.rgb, ref, sizeof(ref)) == 0);
	/* and not the FASTDCT pixels (if those differ at all on this image, they must not be ours) */
	static uint8_t fast[W * H * 3];
	CHECK(tjDecompress2(tjd, jpeg, jpeg_len, fast, W, 0, H, TJPF_RGB, TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE) == 0);
	if (memcmp(fast, ref, sizeof(ref)) != 0)
		CHECK(memcmp(img.rgb, fast, sizeof(fast)) != 0);
	vg_image_release(&img);

	/* Truncated JPEG: an error (libjpeg's warning), not a half-grey image. */
	CHECK_EQ_INT(vg_image_decode(jpeg, jpeg_len - 40, &img, err, sizeof(err)), -EBADMSG);
	CHECK(strncmp(err, "corrupt JPEG", 12) == 0);
	CHECK(img.rgb == NULL);

	/* Oversized: a SOF claiming 20000 x 20000 is refused before any pixel memory is taken. */
	unsigned char *big = malloc(jpeg_len);
	memcpy(big, jpeg, jpeg_len);
	for (unsigned long i = 0; i + 8 < jpeg_len; i++) {
		if (big[i] == 0xff && big[i + 1] == 0xc0) { /* SOF0: len(2) precision(1) height(2) width(2) */
			big[i + 5] = 20000 >> 8;
			big[i + 6] = 20000 & 0xff;
			big[i + 7] = 20000 >> 8;
			big[i + 8] = 20000 & 0xff;
			break;
		}
	}
	CHECK_EQ_INT(vg_image_decode(big, jpeg_len, &img, err, sizeof(err)), -EFBIG);
	CHECK(strstr(err, "20000x20000") != NULL);
	free(big);

	/* Not an image at all; empty input; a missing file. */
	static const char text[] = "GIF89a this is not a JPEG";
	CHECK_EQ_INT(vg_image_decode(text, sizeof(text), &img, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(vg_image_decode(text, 0, &img, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(vg_image_load("/nonexistent.jpg", &img, err, sizeof(err)), -ENOENT);
	CHECK_EQ_INT(vg_image_load("/tmp", &img, err, sizeof(err)), -EINVAL);

	/* Binary PGM (P5): a comment in the header, grey to R = G = B, maxval scaled to 255; a short
	 * file, a 16-bit maxval and a header of nonsense are one-line errors. */
	static const char pgm[] = "P5\n# ORL\n3 2\n255\n\x00\x10\x20\x30\x40\xff";
	static const char pgm15[] = "P5 2 1 15 \x0f\x05";
	CHECK_EQ_INT(vg_image_sniff(pgm, sizeof(pgm) - 1), VG_IMAGE_PGM);
	CHECK_EQ_INT(vg_image_decode(pgm, sizeof(pgm) - 1, &img, err, sizeof(err)), 0);
	CHECK(img.width == 3 && img.height == 2 && img.format == VG_IMAGE_PGM);
	CHECK(img.rgb[3] == 0x10 && img.rgb[4] == 0x10 && img.rgb[5] == 0x10 && img.rgb[17] == 0xff);
	vg_image_release(&img);
	CHECK_EQ_INT(vg_image_decode(pgm15, sizeof(pgm15) - 1, &img, err, sizeof(err)), 0);
	CHECK(img.rgb[0] == 255 && img.rgb[3] == 85);
	vg_image_release(&img);
	CHECK_EQ_INT(vg_image_decode(pgm, sizeof(pgm) - 2, &img, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "truncated") != NULL);
	CHECK_EQ_INT(vg_image_decode("P5 2 1 65535 \x01\x02\x03\x04", 17, &img, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(vg_image_decode("P5 x 1 255 \x01", 13, &img, err, sizeof(err)), -EBADMSG);
	CHECK_EQ_INT(vg_image_decode("P5 99999 99999 255 ", 19, &img, err, sizeof(err)), -EFBIG);

	tjFree(jpeg);
	tjDestroy(tjc);
	tjDestroy(tjd);
	free(png_data);
	return vg_test_exit();
}
