/**
 * @file fw.h
 * firmware/: the appliance image, Vigil's Debian package and signed A/B updates (RAUC bundles,
 * systemd-boot boot counting, the health gate). This first part is what every later one needs:
 * the version of the running build and an exact order on versions, by which an update is refused
 * as a downgrade below the minimum version.
 *
 * Threads: any; no state.
 */
#ifndef FW_H
#define FW_H

#include <stdint.h>

/* A release version MAJOR.MINOR.PATCH, each 0..65535. */
struct fw_version {
	uint16_t major, minor, patch;
};

/**
 * Parse TEXT ("1.4.2"; nothing before or after, no leading zeros but a lone 0, no sign) into
 * *OUT. Returns 0, or -EINVAL (*OUT untouched): an update bundle's version is outside input.
 */
int fw_version_parse(const char *text, struct fw_version *out /* OUT */);

/** <0, 0 or >0 as A is older than, the same as, or newer than B. */
int fw_version_cmp(const struct fw_version *a, const struct fw_version *b);

/** The version this program was built as (the meson project's version). */
const char *fw_version_running(void);

#endif /* FW_H */
