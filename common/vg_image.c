/*
 * Still-image decoding (vg_image.h). JPEG: TurboJPEG with no FAST flags (ISLOW IDCT, fancy
 * upsampling), warnings treated as errors, and a scan limit against progressive-JPEG bombs.
 * PNG: libpng's simplified API to 8-bit sRGB RGB. PGM: binary netpbm P5 grey (the ORL/AT&T face
 * set's format), parsed here: no Debian library reads it without pulling in netpbm's whole API for
 * a header of four numbers. Sizes are checked from the headers before a pixel buffer is allocated.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <png.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "vg_base.h"
#include "vg_file.h"
#include "vg_image.h"
#include "vg_pool.h"

enum vg_image_format vg_image_sniff(const void *data, size_t len)
{
	static const unsigned char png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	const unsigned char *d = data;

	if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
		return VG_IMAGE_JPEG;
	if (len >= sizeof(png_magic) && memcmp(d, png_magic, sizeof(png_magic)) == 0)
		return VG_IMAGE_PNG;
	if (len >= 3 && d[0] == 'P' && d[1] == '5' && strchr(" \t\r\n", d[2]) && d[2])
		return VG_IMAGE_PGM;
	return VG_IMAGE_UNKNOWN;
}

const char *vg_image_format_name(enum vg_image_format format)
{
	switch (format) {
	case VG_IMAGE_JPEG: return "JPEG";
	case VG_IMAGE_PNG: return "PNG";
	case VG_IMAGE_PGM: return "PGM";
	default: return "unknown";
	}
}

static int check_size(const char *format, uint32_t w, uint32_t h, char *err, size_t errlen)
{
	/* A JPEG cut inside its headers can "succeed" with no frame header: that is corruption. */
	if (w == 0 || h == 0)
		return vg_errf(err, errlen, -EBADMSG, "corrupt %s: no frame size in the header (truncated?)", format);
	if (w > VG_IMAGE_MAX_SIDE || h > VG_IMAGE_MAX_SIDE || (uint64_t)w * h > VG_IMAGE_MAX_PIXELS)
		return vg_errf(err, errlen, -EFBIG, "image is %ux%u, larger than %u pixels a side or %u pixels", w, h,
			    VG_IMAGE_MAX_SIDE, VG_IMAGE_MAX_PIXELS);
	return 0;
}

static int decode_jpeg(const void *data, size_t len, struct vg_image *out, char *err, size_t errlen)
{
	int width, height, subsamp, colorspace, rc;
	uint8_t *rgb;
	tjhandle tj;

	if (len > (size_t)ULONG_MAX)
		return vg_errf(err, errlen, -EFBIG, "JPEG too large");
	tj = tjInitDecompress();
	if (!tj)
		return vg_errf(err, errlen, -ENOMEM, "cannot start the JPEG decoder");
	if (tjDecompressHeader3(tj, data, (unsigned long)len, &width, &height, &subsamp, &colorspace) < 0) {
		rc = vg_errf(err, errlen, -EBADMSG, "corrupt JPEG: %s", tjGetErrorStr2(tj));
		goto out_destroy;
	}
	rc = check_size("JPEG", (uint32_t)width, (uint32_t)height, err, errlen);
	if (rc < 0)
		goto out_destroy;
	rgb = malloc((size_t)width * (size_t)height * 3);
	if (!rgb) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory for %dx%d pixels", width, height);
		goto out_destroy;
	}
	/*
	 * No TJFLAG_FASTDCT / TJFLAG_FASTUPSAMPLE: the defaults are what the oracle and djpeg see.
	 * STOPONWARNING: a truncated file is an error, not an image with a grey bottom half.
	 * LIMITSCANS: refuse progressive JPEGs with absurd scan counts (a decode-time bomb).
	 */
	if (tjDecompress2(tj, data, (unsigned long)len, rgb, width, 0, height, TJPF_RGB,
			  TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) < 0) {
		rc = vg_errf(err, errlen, -EBADMSG, "corrupt JPEG: %s", tjGetErrorStr2(tj));
		vg_scrub(rgb, (size_t)width * (size_t)height * 3);
		free(rgb);
		goto out_destroy;
	}
	*out = (struct vg_image){ (uint32_t)width, (uint32_t)height, rgb, VG_IMAGE_JPEG };
	rc = 0;
out_destroy:
	tjDestroy(tj);
	return rc;
}

static int decode_png(const void *data, size_t len, struct vg_image *out, char *err, size_t errlen)
{
	png_image png;
	uint8_t *rgb;
	size_t size;
	int rc;

	memset(&png, 0, sizeof(png));
	png.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&png, data, len))
		return vg_errf(err, errlen, -EBADMSG, "corrupt PNG: %s", png.message);
	rc = check_size("PNG", png.width, png.height, err, errlen);
	if (rc < 0)
		goto out_free;
	png.format = PNG_FORMAT_RGB; /* 8-bit sRGB; alpha is composited onto black */
	size = PNG_IMAGE_SIZE(png);
	rgb = malloc(size);
	if (!rgb) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory for %ux%u pixels", png.width, png.height);
		goto out_free;
	}
	if (!png_image_finish_read(&png, NULL, rgb, 0, NULL)) {
		rc = vg_errf(err, errlen, -EBADMSG, "corrupt PNG: %s", png.message);
		vg_scrub(rgb, size);
		free(rgb);
		goto out_free;
	}
	*out = (struct vg_image){ png.width, png.height, rgb, VG_IMAGE_PNG };
	return 0;
out_free:
	png_image_free(&png);
	return rc;
}

/*
 * One header number of a PGM at *POS: whitespace and '#' comments (to the end of the line) before
 * it, at most 5 digits (a side is at most VG_IMAGE_MAX_SIDE, maxval at most 65535). -1 if none.
 */
static long pgm_number(const unsigned char *d, size_t len, size_t *pos)
{
	long v = 0;
	int digits = 0;

	for (;;) {
		while (*pos < len && strchr(" \t\r\n\v\f", d[*pos]) && d[*pos])
			(*pos)++;
		if (*pos < len && d[*pos] == '#') {
			while (*pos < len && d[*pos] != '\n')
				(*pos)++;
			continue;
		}
		break;
	}
	for (; *pos < len && d[*pos] >= '0' && d[*pos] <= '9'; (*pos)++) {
		if (++digits > 5)
			return -1;
		v = v * 10 + (d[*pos] - '0');
	}
	return digits ? v : -1;
}

/* Binary PGM (P5), 8-bit (maxval 1..255, scaled to 0..255), grey copied to R, G and B. */
static int decode_pgm(const void *data, size_t len, struct vg_image *out, char *err, size_t errlen)
{
	const unsigned char *d = data;
	size_t pos = 2, npix;
	long w, h, maxval;
	uint8_t *rgb;
	int rc;

	w = pgm_number(d, len, &pos);
	h = pgm_number(d, len, &pos);
	maxval = pgm_number(d, len, &pos);
	if (w < 0 || h < 0 || maxval < 0 || pos >= len || !strchr(" \t\r\n\v\f", d[pos]) || !d[pos])
		return vg_errf(err, errlen, -EBADMSG, "corrupt PGM: unreadable header");
	pos++; /* the single whitespace before the pixels */
	if (maxval == 0 || maxval > 255)
		return vg_errf(err, errlen, maxval ? -EINVAL : -EBADMSG, "PGM maxval %ld: only 8-bit PGM (1..255) is read",
			       maxval);
	rc = check_size("PGM", (uint32_t)w, (uint32_t)h, err, errlen);
	if (rc < 0)
		return rc;
	npix = (size_t)w * (size_t)h;
	if (len - pos < npix)
		return vg_errf(err, errlen, -EBADMSG, "corrupt PGM: %zu of %zu pixels (truncated?)", len - pos, npix);
	rgb = malloc(npix * 3);
	if (!rgb)
		return vg_errf(err, errlen, -ENOMEM, "out of memory for %ldx%ld pixels", w, h);
	for (size_t i = 0; i < npix; i++) {
		unsigned v = d[pos + i];

		v = v > (unsigned)maxval ? 255 : (v * 255 + (unsigned)maxval / 2) / (unsigned)maxval;
		rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)v;
	}
	*out = (struct vg_image){ (uint32_t)w, (uint32_t)h, rgb, VG_IMAGE_PGM };
	return 0;
}

int vg_image_decode(const void *data, size_t len, struct vg_image *out, char *err, size_t errlen)
{
	switch (vg_image_sniff(data, len)) {
	case VG_IMAGE_JPEG:
		return decode_jpeg(data, len, out, err, errlen);
	case VG_IMAGE_PNG:
		return decode_png(data, len, out, err, errlen);
	case VG_IMAGE_PGM:
		return decode_pgm(data, len, out, err, errlen);
	default:
		return vg_errf(err, errlen, -EINVAL, "not a JPEG, PNG or PGM image");
	}
}

int vg_image_load(const char *path, struct vg_image *out, char *err, size_t errlen)
{
	uint8_t *data;
	size_t len;
	int rc;

	rc = vg_file_read(path, VG_IMAGE_MAX_FILE, &data, &len);
	if (rc == -EINVAL)
		return vg_errf(err, errlen, rc, "not a regular file");
	if (rc == -EFBIG)
		return vg_errf(err, errlen, rc, "file is larger than %u bytes", VG_IMAGE_MAX_FILE);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "%s", vg_strerror(rc));
	rc = vg_image_decode(data, len, out, err, errlen);
	/* The file is a face photo too. */
	vg_scrub(data, len);
	free(data);
	return rc;
}

void vg_image_release(struct vg_image *img)
{
	if (img->rgb) {
		vg_scrub(img->rgb, (size_t)img->width * img->height * 3);
		free(img->rgb);
	}
	*img = (struct vg_image){ 0 };
}

void vg_image_rgb_sha256(const struct vg_image *img, char hex[65])
{
	unsigned char digest[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(digest, img->rgb, (unsigned long long)img->width * img->height * 3);
	sodium_bin2hex(hex, 65, digest, sizeof(digest));
}
