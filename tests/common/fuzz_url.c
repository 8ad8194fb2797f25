/*
 * Fuzz target: vg_url_split on arbitrary bytes. Checks the promises of vg_url.h: a refusal is one
 * line and holds no byte run of the URL's userinfo, an accepted URL's public form holds no
 * credential (no userinfo, no '@'), splits again to itself with no credentials, and every field
 * is a NUL-terminated string of its size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vg_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vg_url u, again;
	char url[VG_URL_MAX + 64], err[256];
	int rc;

	if (size >= sizeof(url))
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	rc = vg_url_split(url, "rtsp", "554", &u, err, sizeof(err));
	if (rc < 0) {
		if (!err[0] || strchr(err, '\n') || u.user[0] || u.password[0] || u.url[0])
			__builtin_trap();
		/* The reason never quotes the password: 6 bytes of it may not appear in ERR. */
		const char *at = strchr(url, '@'), *colon = strchr(url + (size > 7 ? 7 : size), ':');
		if (at && colon && colon < at && at - colon > 6 && memmem(err, strlen(err), colon + 1, 6))
			__builtin_trap();
		return 0;
	}
	if (strnlen(u.url, sizeof(u.url)) == sizeof(u.url) || strnlen(u.user, sizeof(u.user)) == sizeof(u.user) ||
	    strnlen(u.password, sizeof(u.password)) == sizeof(u.password) || !u.host[0] || !u.port[0])
		__builtin_trap();
	if (strchr(u.url, '@') || strchr(u.url, ' ') || strchr(u.url, '#') || strchr(u.target, '@'))
		__builtin_trap();
	for (const char *p = u.user; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			__builtin_trap();
	for (const char *p = u.password; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			__builtin_trap();
	if (u.password[0] && strlen(u.password) >= 6 && strstr(u.url, u.password))
		__builtin_trap();
	/* The public URL is a fixed point: it splits to itself, with nothing to seal. */
	if (vg_url_split(u.url, "rtsp", "554", &again, err, sizeof(err)) != 0 || strcmp(again.url, u.url) != 0 ||
	    again.user[0] || again.password[0] || strcmp(again.target, u.target) != 0)
		__builtin_trap();
	vg_url_scrub(&u);
	vg_url_scrub(&again);
	return 0;
}
