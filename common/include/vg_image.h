/**
 * @file vg_image.h
 * Still images to packed 8-bit RGB: JPEG through libjpeg-turbo with its defaults (ISLOW IDCT,
 * fancy upsampling: the pixels `djpeg -dct int` and the face-api.js oracle see, face-nets.md §10)
 * PNG through libpng, and binary PGM (netpbm P5, 8-bit grey, as the ORL/AT&T face set ships) by
 * a parser of our own. Used by `vigilctl faces`, watchlist import and the oracle's decoder.
 *
 * Images come from outside (operators' folders, files people send): every size is bounded, a
 * corrupt or truncated image is an error with a one-line reason, never a crash or partial pixels.
 * The pixels are faces: vg_image_release() zeroes them before freeing.
 */
#ifndef VG_IMAGE_H
#define VG_IMAGE_H

#include <stddef.h>
#include <stdint.h>

enum vg_image_format {
	VG_IMAGE_UNKNOWN = 0,
	VG_IMAGE_JPEG,
	VG_IMAGE_PNG,
	VG_IMAGE_PGM,   /* binary P5, maxval 1..255; grey becomes R = G = B */
};

#define VG_IMAGE_MAX_SIDE 16384u            /* pixels, either side */
#define VG_IMAGE_MAX_PIXELS (100u * 1000000u) /* 100 MP: a 4K frame is 8.3 MP */
#define VG_IMAGE_MAX_FILE (64u << 20)       /* bytes read by vg_image_load() */

/** A decoded image. The caller owns rgb after a successful decode and gives it back with release. */
struct vg_image {
	uint32_t width, height;
	uint8_t *rgb; /* width * height * 3 bytes, rows top to bottom, no padding */
	enum vg_image_format format;
};

/** Which format DATA holds, by its magic bytes. */
enum vg_image_format vg_image_sniff(const void *data, size_t len);

/**
 * Decode LEN bytes of JPEG, PNG or PGM into *OUT. Returns 0; -EINVAL (not a JPEG, PNG or PGM, or a
 * 16-bit PGM),
 * -EBADMSG (corrupt or truncated: libjpeg-turbo's warnings count as errors), -EFBIG (over the
 * limits above), -ENOMEM. On error *OUT is untouched and ERR holds one line saying why.
 */
int vg_image_decode(const void *data, size_t len, struct vg_image *out, char *err, size_t errlen);

/** Read PATH (at most VG_IMAGE_MAX_FILE bytes) and decode it; -errno of open/read, or as above. */
int vg_image_load(const char *path, struct vg_image *out, char *err, size_t errlen);

/** Zero and free the pixels; *IMG becomes empty. Safe on an empty image. */
void vg_image_release(struct vg_image *img);

/** sha256 of the packed RGB bytes as 64 lowercase hex digits and a NUL (DESIGN.md's rgb_sha256). */
void vg_image_rgb_sha256(const struct vg_image *img, char hex[65] /* OUT */);

const char *vg_image_format_name(enum vg_image_format format);

#endif /* VG_IMAGE_H */
