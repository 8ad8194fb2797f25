/*
 * Logging (vg_log.h). vg_log_emit() formats into a bounded stack buffer and calls the sink; the
 * level check happens in the caller's VG_LOG() before any argument is evaluated.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vg_log.h"

#define VG_LOG_LINE_MAX 1024

_Atomic unsigned char vg_log_thresholds[VG_LOGTYPE__COUNT] = {
#define VG_LOG_TYPE_DEFAULT(id, name) [VG_LOGTYPE_##id] = VG_LOG_NOTICE,
	VG_LOG_TYPES(VG_LOG_TYPE_DEFAULT)
#undef VG_LOG_TYPE_DEFAULT
};

static const char *const type_names[VG_LOGTYPE__COUNT] = {
#define VG_LOG_TYPE_NAME(id, name) [VG_LOGTYPE_##id] = name,
	VG_LOG_TYPES(VG_LOG_TYPE_NAME)
#undef VG_LOG_TYPE_NAME
};

static const char *const level_names[] = {
	[VG_LOG_ERR] = "err", [VG_LOG_WARN] = "warn", [VG_LOG_NOTICE] = "notice",
	[VG_LOG_INFO] = "info", [VG_LOG_DEBUG] = "debug",
};

static void stderr_sink(void *arg, enum vg_log_type type, enum vg_log_level level, const char *line)
{
	/* One fprintf per line: stdio locks the stream, so lines from threads never interleave. */
	fprintf(stderr, "%s %s: %s\n", level_names[level], type_names[type], line);
}

/* The sink and its argument change together; a sink set at start-up is read without a lock. */
struct sink {
	vg_log_sink_fn *fn;
	void *arg;
};
static struct sink default_sink = { stderr_sink, NULL };
static _Atomic(struct sink *) current_sink = &default_sink;
static struct sink custom_sink;

void vg_log_set_sink(vg_log_sink_fn *fn, void *arg)
{
	if (!fn) {
		atomic_store(&current_sink, &default_sink);
		return;
	}
	custom_sink = (struct sink){ fn, arg };
	atomic_store(&current_sink, &custom_sink);
}

void vg_log_emit(enum vg_log_type type, enum vg_log_level level, const char *fmt, ...)
{
	char line[VG_LOG_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);

	struct sink *s = atomic_load(&current_sink);
	s->fn(s->arg, type, level, line);
}

void vg_log_set_level(enum vg_log_type type, enum vg_log_level level)
{
	if (VG_NEVER((unsigned)type >= VG_LOGTYPE__COUNT))
		return;
	atomic_store_explicit(&vg_log_thresholds[type], (unsigned char)level, memory_order_relaxed);
}

const char *vg_log_type_name(enum vg_log_type type)
{
	return (unsigned)type < VG_LOGTYPE__COUNT ? type_names[type] : "?";
}

const char *vg_log_level_name(enum vg_log_level level)
{
	return (unsigned)level < VG_ARRAY_SIZE(level_names) ? level_names[level] : "?";
}

static int parse_level(const char *s, size_t len)
{
	for (size_t i = 0; i < VG_ARRAY_SIZE(level_names); i++)
		if (strlen(level_names[i]) == len && strncasecmp(s, level_names[i], len) == 0)
			return (int)i;
	return -EINVAL;
}

static int parse_type(const char *s, size_t len)
{
	for (size_t i = 0; i < VG_LOGTYPE__COUNT; i++)
		if (strlen(type_names[i]) == len && strncasecmp(s, type_names[i], len) == 0)
			return (int)i;
	return -EINVAL;
}

int vg_log_set_levels(const char *spec)
{
	unsigned char next[VG_LOGTYPE__COUNT];
	const char *p = spec;

	for (size_t i = 0; i < VG_LOGTYPE__COUNT; i++)
		next[i] = atomic_load_explicit(&vg_log_thresholds[i], memory_order_relaxed);

	/* Parse everything into NEXT first, so a bad spec changes nothing. */
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *eq = memchr(p, '=', len);
		int level, type;

		if (len == 0)
			return -EINVAL;
		if (eq) {
			type = parse_type(p, (size_t)(eq - p));
			level = parse_level(eq + 1, len - (size_t)(eq - p) - 1);
			if (type < 0 || level < 0)
				return -EINVAL;
			next[type] = (unsigned char)level;
		} else {
			level = parse_level(p, len);
			if (level < 0)
				return -EINVAL;
			memset(next, level, sizeof(next));
		}
		p += len;
		if (*p == ',')
			p++;
	}
	for (size_t i = 0; i < VG_LOGTYPE__COUNT; i++)
		atomic_store_explicit(&vg_log_thresholds[i], next[i], memory_order_relaxed);
	return 0;
}
