/**
 * @file vg_log.h
 * Logging: one log type per component, each with its own level, and a sink that main() chooses.
 *
 * VG_LOG() checks the level before its arguments are evaluated, so a disabled debug line costs
 * one relaxed load and a compare. Components log through VG_LOG() and never print, exit or abort
 * themselves. The fast path (per packet, per frame) does not log at all: it bumps counters
 * (vg_counter.h).
 *
 *     VG_LOG(MATCH, WARN, "shard %u: compaction took %" PRIu64 " ms", shard, ms);
 */
#ifndef VG_LOG_H
#define VG_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

#include "vg_base.h"

enum vg_log_level {
	VG_LOG_ERR = 0,
	VG_LOG_WARN,
	VG_LOG_NOTICE,
	VG_LOG_INFO,
	VG_LOG_DEBUG,
};

/* The log types, one per component, in dependency order. X(ID, "name as written in configs") */
#define VG_LOG_TYPES(X)         \
	X(COMMON, "common")     \
	X(MATCH, "matcher")     \
	X(GPU, "gpu")           \
	X(DP, "dataplane")      \
	X(STORE, "store")       \
	X(MGMT, "mgmt")         \
	X(FW, "firmware")

enum vg_log_type {
#define VG_LOG_TYPE_ENUM(id, name) VG_LOGTYPE_##id,
	VG_LOG_TYPES(VG_LOG_TYPE_ENUM)
#undef VG_LOG_TYPE_ENUM
	VG_LOGTYPE__COUNT
};

/* The most verbose level printed, per type. Read on every VG_LOG(); written by vg_log_set_*. */
extern _Atomic unsigned char vg_log_thresholds[VG_LOGTYPE__COUNT];

static inline bool vg_log_enabled(enum vg_log_type type, enum vg_log_level level)
{
	return (unsigned)level <= atomic_load_explicit(&vg_log_thresholds[type], memory_order_relaxed);
}

/** Log a printf-style line if TYPE's level lets LEVEL through; the arguments are not evaluated otherwise. */
#define VG_LOG(TYPE, LEVEL, ...)                                                     \
	do {                                                                         \
		if (vg_log_enabled(VG_LOGTYPE_##TYPE, VG_LOG_##LEVEL))               \
			vg_log_emit(VG_LOGTYPE_##TYPE, VG_LOG_##LEVEL, __VA_ARGS__); \
	} while (0)

/** Format one line (at most 1 KiB, longer lines are cut and end in "...") and hand it to the sink. */
void vg_log_emit(enum vg_log_type type, enum vg_log_level level, const char *fmt, ...) VG_PRINTF(3, 4);

/**
 * Where lines go. The default sink writes "<level> <type>: <text>" to stderr. A sink may be
 * called from any thread at once; it owns nothing it is given beyond the call.
 */
typedef void vg_log_sink_fn(void *arg, enum vg_log_type type, enum vg_log_level level, const char *line);
void vg_log_set_sink(vg_log_sink_fn *sink, void *arg); /* NULL restores the default */

/**
 * Set levels from a spec such as "info", "warn,matcher=debug" or "dataplane=err": a bare level sets
 * every type, then type=level pairs override it. Returns 0, or -EINVAL for an unknown type or
 * level, in which case no level has changed.
 */
int vg_log_set_levels(const char *spec);

void vg_log_set_level(enum vg_log_type type, enum vg_log_level level);
const char *vg_log_type_name(enum vg_log_type type);
const char *vg_log_level_name(enum vg_log_level level);

#endif /* VG_LOG_H */
