/*
 * vg-decode IMAGE [OUT.rgb]: decode IMAGE (JPEG or PNG) with Vigil's own decoder (vg_image.h) and
 * print one JSON line: {"path":P,"width":W,"height":H,"rgb_sha256":S}. With OUT.rgb, also write
 * the packed RGB (width*height*3 bytes, rows top to bottom, no header).
 *
 * The face-api.js oracle reads images only through this program, so that tfjs and the C pipeline
 * see the same pixels (../shared/face-nets.md §10). Exit 0, 1 with one line on stderr on failure,
 * 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vg_base.h"
#include "vg_image.h"

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int write_all(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;

	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int rc = -errno;
			close(fd);
			return rc;
		}
		done += (size_t)n;
	}
	return close(fd) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	struct vg_image img;
	char err[256], sha[65];
	int rc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: vg-decode IMAGE [OUT.rgb]\n");
		return 2;
	}
	rc = vg_image_load(argv[1], &img, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "vg-decode: %s: %s\n", argv[1], err);
		return 1;
	}
	if (argc == 3) {
		rc = write_all(argv[2], img.rgb, (size_t)img.width * img.height * 3);
		if (rc < 0) {
			fprintf(stderr, "vg-decode: %s: %s\n", argv[2], vg_strerror(rc));
			vg_image_release(&img);
			return 1;
		}
	}
	vg_image_rgb_sha256(&img, sha);
	fputs("{\"path\":", stdout);
	print_json_string(argv[1]);
	printf(",\"width\":%u,\"height\":%u,\"rgb_sha256\":\"%s\"}\n", img.width, img.height, sha);
	vg_image_release(&img);
	return fflush(stdout) == 0 ? 0 : 1;
}
