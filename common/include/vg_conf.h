/**
 * @file vg_conf.h
 * Configuration as one table per component (Redis's config.c is the model): each entry names a
 * setting, its type, whether it may change at run time, the struct field it lands in, its default,
 * its bounds, an optional apply hook, and its help. The same table sets the defaults, parses the
 * config file and `vigilctl config set`, and writes the `--help` text and the commented sample
 * config, so none of those can drift apart.
 *
 *     struct match_conf { int64_t shards; char file[256]; };
 *     static const struct vg_conf_entry match_conf_entries[] = {
 *         VG_CONF_INT("matcher.shards", VG_CONF_RESTART, struct match_conf, shards, "4", 1, 256,
 *                     "matcher worker threads, one watchlist shard each"),
 *         ...
 *     };
 *
 * The config file: one `name = value` per line; `#` starts a comment; a value may be quoted
 * ("...", with \" and \\ escapes); names are the table's, prefixed by component. Parsing is all or
 * nothing: on any error nothing is changed and the error names the line.
 */
#ifndef VG_CONF_H
#define VG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum vg_conf_type {
	VG_CONF_TYPE_BOOL,   /* bool: yes/no, true/false, on/off, 1/0 */
	VG_CONF_TYPE_INT,    /* int64_t: decimal or 0x hex, optional K/M/G suffix (x1024) */
	VG_CONF_TYPE_DOUBLE, /* double */
	VG_CONF_TYPE_STRING, /* char[field size], NUL-terminated; longer values are refused */
	VG_CONF_TYPE_ENUM,   /* int: index into choices */
};

enum vg_conf_flags {
	VG_CONF_RESTART = 0,     /* read at start-up only */
	VG_CONF_MUTABLE = 1 << 0, /* may change at run time (SIGHUP, `vigilctl config set`) */
	VG_CONF_SECRET = 1 << 1,  /* a credential: never printed, logged or sampled */
};

struct vg_conf_entry;

/**
 * Called after a value is parsed into OBJ, before it is committed; may check it against other
 * fields or apply it to running state. Returns 0, or -errno with a reason in ERR.
 */
typedef int vg_conf_apply_fn(void *obj, const struct vg_conf_entry *entry, char *err, size_t errlen);

struct vg_conf_entry {
	const char *name;
	enum vg_conf_type type;
	unsigned flags;              /* enum vg_conf_flags */
	size_t offset;               /* of the field in the component's config struct */
	size_t size;                 /* of the field */
	const char *default_value;   /* as text, parsed like the file */
	double min, max;             /* INT and DOUBLE bounds, inclusive */
	const char *const *choices;  /* ENUM: NULL-terminated names */
	vg_conf_apply_fn *apply;     /* may be NULL */
	const char *help;
};

#define VG_CONF_FIELD_(T, f) offsetof(T, f), sizeof(((T *)0)->f)
#define VG_CONF_BOOL(name, flags, T, f, def, help) \
	{ name, VG_CONF_TYPE_BOOL, flags, VG_CONF_FIELD_(T, f), def, 0, 1, NULL, NULL, help }
#define VG_CONF_INT(name, flags, T, f, def, min, max, help) \
	{ name, VG_CONF_TYPE_INT, flags, VG_CONF_FIELD_(T, f), def, min, max, NULL, NULL, help }
#define VG_CONF_DOUBLE(name, flags, T, f, def, min, max, help) \
	{ name, VG_CONF_TYPE_DOUBLE, flags, VG_CONF_FIELD_(T, f), def, min, max, NULL, NULL, help }
#define VG_CONF_STRING(name, flags, T, f, def, help) \
	{ name, VG_CONF_TYPE_STRING, flags, VG_CONF_FIELD_(T, f), def, 0, 0, NULL, NULL, help }
#define VG_CONF_ENUM(name, flags, T, f, def, choices, help) \
	{ name, VG_CONF_TYPE_ENUM, flags, VG_CONF_FIELD_(T, f), def, 0, 0, choices, NULL, help }

/** One component's table and the size of the struct it fills. */
struct vg_conf_table {
	const char *component;
	const struct vg_conf_entry *entries;
	size_t n_entries;
	size_t obj_size;
};

/**
 * The tables of a program and the objects they fill (objs[i] is filled by tables[i]).
 * The caller owns both arrays and the objects.
 */
struct vg_conf_set {
	const struct vg_conf_table *const *tables;
	void *const *objs;
	size_t n;
};

/** Fill every object with its table's defaults. -EINVAL if a default is invalid (a table bug). */
int vg_conf_set_defaults(const struct vg_conf_set *set, char *err, size_t errlen);

/**
 * Set one value by name. AT_RUNTIME refuses to change settings that are not VG_CONF_MUTABLE
 * (-EPERM); giving such a setting its current value is accepted, so a whole file can be reloaded.
 * Returns 0; -ENOENT unknown name, -EINVAL unparsable value, -ERANGE out of bounds or too long,
 * -EPERM, or what the apply hook returned. On error the object is unchanged and ERR says why in
 * one line.
 */
int vg_conf_set_value(const struct vg_conf_set *set, const char *name, const char *value, bool at_runtime,
		      char *err, size_t errlen);

/**
 * Parse config text (LEN bytes, need not be NUL-terminated) into the objects, all or nothing.
 * Returns the number of settings applied, or -errno with "line N: ..." in ERR.
 */
int vg_conf_parse(const struct vg_conf_set *set, const char *text, size_t len, bool at_runtime, char *err,
		  size_t errlen);

/** Read PATH (at most 1 MiB) and vg_conf_parse() it; ERR names the file. */
int vg_conf_load_file(const struct vg_conf_set *set, const char *path, bool at_runtime, char *err, size_t errlen);

/** The entry named NAME in SET's tables, or NULL. */
const struct vg_conf_entry *vg_conf_find(const struct vg_conf_set *set, const char *name);

/** The value of NAME as text, as the file would hold it; secrets read "(secret)". -ENOENT, -ENOSPC. */
int vg_conf_get_value(const struct vg_conf_set *set, const char *name, char *buf, size_t len);

/** The commented sample config: every setting with its help, bounds, mutability and default. */
int vg_conf_write_sample(const struct vg_conf_set *set, FILE *out);

/** The `--help` lines for every setting: "  name=VALUE   help (default D, MIN..MAX)". */
int vg_conf_write_help(const struct vg_conf_set *set, FILE *out);

#endif /* VG_CONF_H */
