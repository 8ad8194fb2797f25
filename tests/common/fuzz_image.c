/* Fuzz target: vg_image_decode on arbitrary bytes (JPEG, PNG and PGM from outside). */
#include <stdint.h>
#include <string.h>

#include "vg_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vg_image img;
	char err[256];

	if (vg_image_decode(data, size, &img, err, sizeof(err)) == 0) {
		/* Touch every pixel so that a short buffer shows under ASan. */
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < (size_t)img.width * img.height * 3; i += 61)
			sink ^= img.rgb[i];
		sink ^= img.rgb[(size_t)img.width * img.height * 3 - 1];
		(void)sink;
		vg_image_release(&img);
	} else if (memchr(err, '\n', strlen(err))) {
		__builtin_trap(); /* errors are one line */
	}
	return 0;
}
