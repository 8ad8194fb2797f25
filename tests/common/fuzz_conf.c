/*
 * Fuzz target: vg_conf_parse on arbitrary config text, against a table with every type. Checks
 * the all-or-nothing promise: on error the object is byte-for-byte what it was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vg_base.h"
#include "vg_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_conf {
	int64_t count;
	double ratio;
	bool flag;
	char text[24];
	int mode;
};

static const char *const modes[] = { "poll", "interrupt", "hybrid", NULL };

static const struct vg_conf_entry entries[] = {
	VG_CONF_INT("a.count", VG_CONF_MUTABLE, struct fuzz_conf, count, "4", -5, 1 << 30, "a count"),
	VG_CONF_DOUBLE("a.ratio", VG_CONF_RESTART, struct fuzz_conf, ratio, "0.5", -1, 1, "a ratio"),
	VG_CONF_BOOL("a.flag", VG_CONF_MUTABLE, struct fuzz_conf, flag, "no", "a flag"),
	VG_CONF_STRING("b.text", VG_CONF_MUTABLE | VG_CONF_SECRET, struct fuzz_conf, text, "x", "a string"),
	VG_CONF_ENUM("b.mode", VG_CONF_RESTART, struct fuzz_conf, mode, "poll", modes, "a choice"),
};

static const struct vg_conf_table table = { "fuzz", entries, VG_ARRAY_SIZE(entries), sizeof(struct fuzz_conf) };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_conf conf, before;
	const struct vg_conf_table *tables[] = { &table };
	void *objs[] = { &conf };
	struct vg_conf_set set = { tables, objs, 1 };
	char err[256];

	if (vg_conf_set_defaults(&set, err, sizeof(err)) < 0)
		__builtin_trap();
	memcpy(&before, &conf, sizeof(conf));
	/* The first byte picks start-up or run-time parsing. */
	bool at_runtime = size && (data[0] & 1);
	int rc = vg_conf_parse(&set, (const char *)data, size, at_runtime, err, sizeof(err));
	if (rc < 0 && memcmp(&before, &conf, sizeof(conf)) != 0)
		__builtin_trap(); /* a failed parse changed something */
	if (rc < 0 && strchr(err, '\n'))
		__builtin_trap();
	if (conf.text[sizeof(conf.text) - 1] != '\0' && strnlen(conf.text, sizeof(conf.text)) == sizeof(conf.text))
		__builtin_trap();
	if (conf.mode < 0 || conf.mode > 2 || conf.count < -5 || conf.count > (1 << 30))
		__builtin_trap();
	return 0;
}
