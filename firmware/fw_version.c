/* Release versions: parsing outside text strictly, and their order (fw.h). */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>

#include "fw.h"

#ifndef VG_VERSION
#error "VG_VERSION comes from firmware/meson.build"
#endif

/* One component: digits only, no leading zero unless it is 0, at most 65535. */
static const char *parse_component(const char *s, uint16_t *out)
{
	uint32_t v = 0;
	const char *start = s;

	if (*s < '0' || *s > '9')
		return NULL;
	if (*s == '0' && s[1] >= '0' && s[1] <= '9')
		return NULL;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint32_t)(*s - '0');
		if (v > UINT16_MAX || s - start > 5)
			return NULL;
		s++;
	}
	*out = (uint16_t)v;
	return s;
}

int fw_version_parse(const char *text, struct fw_version *out)
{
	uint16_t part[3];
	const char *s = text;

	for (int i = 0; i < 3; i++) {
		s = s ? parse_component(s, &part[i]) : NULL;
		if (!s || *s != (i < 2 ? '.' : '\0'))
			return -EINVAL;
		s += i < 2;
	}
	*out = (struct fw_version){ part[0], part[1], part[2] };
	return 0;
}

int fw_version_cmp(const struct fw_version *a, const struct fw_version *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return 0;
}

const char *fw_version_running(void)
{
	return VG_VERSION;
}
