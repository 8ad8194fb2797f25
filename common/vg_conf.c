/*
 * Configuration tables (vg_conf.h). Values are parsed by one function, whether they come from a
 * table's default, a config file or `vigilctl config set`, so the three agree by construction.
 * File parsing works on scratch copies of the objects and commits them only when every line
 * parsed, so a bad line changes nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vg_base.h"
#include "vg_conf.h"
#include "vg_file.h"

#define VG_CONF_FILE_MAX (1u << 20)
#define VG_CONF_LINE_MAX 4096

static const struct vg_conf_entry *find_entry(const struct vg_conf_set *set, const char *name, size_t len,
					      size_t *table_index /* OUT */)
{
	for (size_t t = 0; t < set->n; t++) {
		const struct vg_conf_table *table = set->tables[t];

		for (size_t i = 0; i < table->n_entries; i++) {
			const char *n = table->entries[i].name;

			if (strlen(n) == len && memcmp(n, name, len) == 0) {
				*table_index = t;
				return &table->entries[i];
			}
		}
	}
	return NULL;
}

const struct vg_conf_entry *vg_conf_find(const struct vg_conf_set *set, const char *name)
{
	size_t t;

	return find_entry(set, name, strlen(name), &t);
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < VG_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_int(const char *v, int64_t *out)
{
	char *end;
	int64_t mult = 1;

	errno = 0;
	long long x = strtoll(v, &end, 0);
	if (end == v || errno == ERANGE)
		return errno == ERANGE ? -ERANGE : -EINVAL;
	switch (*end) {
	case 'k': case 'K': mult = 1ll << 10; end++; break;
	case 'm': case 'M': mult = 1ll << 20; end++; break;
	case 'g': case 'G': mult = 1ll << 30; end++; break;
	default: break;
	}
	if (*end != '\0')
		return -EINVAL;
	if (__builtin_mul_overflow((int64_t)x, mult, out))
		return -ERANGE;
	return 0;
}

/* Parse V into the field of ENTRY in OBJ, check bounds, run the apply hook. OBJ may be a scratch copy. */
static int apply_value(void *obj, const struct vg_conf_entry *e, const char *v, char *err, size_t errlen)
{
	char *field = (char *)obj + e->offset;
	int rc;

	switch (e->type) {
	case VG_CONF_TYPE_BOOL: {
		bool b;

		if (e->size != sizeof(bool) || parse_bool(v, &b) < 0)
			return vg_errf(err, errlen, -EINVAL, "%s: '%s' is not yes or no", e->name, v);
		memcpy(field, &b, sizeof(b));
		break;
	}
	case VG_CONF_TYPE_INT: {
		int64_t x;

		if (e->size != sizeof(int64_t))
			return vg_errf(err, errlen, -EINVAL, "%s: table field is not int64_t", e->name);
		rc = parse_int(v, &x);
		if (rc < 0)
			return vg_errf(err, errlen, rc, "%s: '%s' is not an integer", e->name, v);
		if ((double)x < e->min || (double)x > e->max)
			return vg_errf(err, errlen, -ERANGE, "%s: %" PRId64 " is outside %.0f..%.0f", e->name, x,
				    e->min, e->max);
		memcpy(field, &x, sizeof(x));
		break;
	}
	case VG_CONF_TYPE_DOUBLE: {
		char *end;
		double d;

		if (e->size != sizeof(double))
			return vg_errf(err, errlen, -EINVAL, "%s: table field is not double", e->name);
		errno = 0;
		d = strtod(v, &end);
		if (end == v || *end != '\0' || errno == ERANGE || !isfinite(d))
			return vg_errf(err, errlen, -EINVAL, "%s: '%s' is not a number", e->name, v);
		if (d < e->min || d > e->max)
			return vg_errf(err, errlen, -ERANGE, "%s: %g is outside %g..%g", e->name, d, e->min, e->max);
		memcpy(field, &d, sizeof(d));
		break;
	}
	case VG_CONF_TYPE_STRING: {
		size_t len = strlen(v);

		if (len >= e->size)
			return vg_errf(err, errlen, -ERANGE, "%s: value is %zu bytes, the most is %zu", e->name, len,
				    e->size - 1);
		memcpy(field, v, len + 1);
		break;
	}
	case VG_CONF_TYPE_ENUM: {
		int idx = -1;

		if (e->size != sizeof(int) || !e->choices)
			return vg_errf(err, errlen, -EINVAL, "%s: table field is not an enum", e->name);
		for (int i = 0; e->choices[i]; i++)
			if (strcasecmp(v, e->choices[i]) == 0)
				idx = i;
		if (idx < 0)
			return vg_errf(err, errlen, -EINVAL, "%s: '%s' is not one of the choices", e->name, v);
		memcpy(field, &idx, sizeof(idx));
		break;
	}
	default:
		return vg_errf(err, errlen, -EINVAL, "%s: unknown type", e->name);
	}
	if (e->apply) {
		rc = e->apply(obj, e, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int vg_conf_set_defaults(const struct vg_conf_set *set, char *err, size_t errlen)
{
	for (size_t t = 0; t < set->n; t++) {
		const struct vg_conf_table *table = set->tables[t];

		memset(set->objs[t], 0, table->obj_size);
		for (size_t i = 0; i < table->n_entries; i++) {
			int rc = apply_value(set->objs[t], &table->entries[i], table->entries[i].default_value, err,
					     errlen);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Copies of every object, so that a multi-line parse commits all or nothing. */
static void free_scratch(void **scratch, size_t n)
{
	for (size_t t = 0; t < n; t++)
		free(scratch[t]);
	free(scratch);
}

static void **make_scratch(const struct vg_conf_set *set)
{
	void **scratch = calloc(set->n ? set->n : 1, sizeof(*scratch));

	if (!scratch)
		return NULL;
	for (size_t t = 0; t < set->n; t++) {
		scratch[t] = malloc(set->tables[t]->obj_size);
		if (!scratch[t]) {
			free_scratch(scratch, t);
			return NULL;
		}
		memcpy(scratch[t], set->objs[t], set->tables[t]->obj_size);
	}
	return scratch;
}

static void commit_scratch(const struct vg_conf_set *set, void **scratch)
{
	for (size_t t = 0; t < set->n; t++)
		memcpy(set->objs[t], scratch[t], set->tables[t]->obj_size);
}

static int set_one(const struct vg_conf_set *set, void **objs, const char *name, size_t name_len,
		   const char *value, bool at_runtime, char *err, size_t errlen)
{
	const struct vg_conf_entry *e;
	size_t t;

	e = find_entry(set, name, name_len, &t);
	if (!e)
		return vg_errf(err, errlen, -ENOENT, "unknown setting '%.*s'", (int)(name_len > 128 ? 128 : name_len),
			    name);
	if (at_runtime && !(e->flags & VG_CONF_MUTABLE)) {
		/* A reloaded file repeats every setting: a restart-only one is refused only if it would
		 * change. Parse it into a copy and compare the field. */
		size_t size = set->tables[t]->obj_size;
		char *copy = malloc(size);
		int rc;

		if (!copy)
			return vg_errf(err, errlen, -ENOMEM, "out of memory");
		memcpy(copy, objs[t], size);
		rc = apply_value(copy, e, value, err, errlen);
		if (rc == 0 && memcmp(copy + e->offset, (char *)objs[t] + e->offset, e->size) != 0)
			rc = vg_errf(err, errlen, -EPERM, "%s: changes only at restart", e->name);
		free(copy);
		return rc;
	}
	return apply_value(objs[t], e, value, err, errlen);
}

int vg_conf_set_value(const struct vg_conf_set *set, const char *name, const char *value, bool at_runtime,
		      char *err, size_t errlen)
{
	void **scratch = make_scratch(set);
	int rc;

	if (!scratch)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	rc = set_one(set, scratch, name, strlen(name), value, at_runtime, err, errlen);
	if (rc == 0)
		commit_scratch(set, scratch);
	free_scratch(scratch, set->n);
	return rc;
}

/*
 * Unquote a value in place: "..." with \" and \\ escapes, or a bare word with trailing blanks
 * removed. Returns 0 or -EINVAL.
 */
static int unquote(char *v)
{
	size_t len = strlen(v);

	while (len && isspace((unsigned char)v[len - 1]))
		v[--len] = '\0';
	if (v[0] != '"')
		return 0;
	char *w = v;
	for (char *r = v + 1;; r++) {
		if (*r == '\0')
			return -EINVAL; /* no closing quote */
		if (*r == '"') {
			/* After the closing quote only blanks and a comment may follow. */
			for (r++; isspace((unsigned char)*r); r++)
				;
			if (*r != '\0' && *r != '#')
				return -EINVAL;
			break;
		}
		if (*r == '\\') {
			r++;
			if (*r != '"' && *r != '\\')
				return -EINVAL;
		}
		*w++ = *r;
	}
	*w = '\0';
	return 0;
}

int vg_conf_parse(const struct vg_conf_set *set, const char *text, size_t len, bool at_runtime, char *err,
		  size_t errlen)
{
	char line[VG_CONF_LINE_MAX];
	void **scratch;
	size_t pos = 0;
	unsigned lineno = 0;
	int applied = 0;
	int rc = 0;

	scratch = make_scratch(set);
	if (!scratch)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *p, *eq, *name_end, *value;
		char sub[256];

		lineno++;
		if (line_len >= sizeof(line)) {
			rc = vg_errf(err, errlen, -E2BIG, "line %u: longer than %zu bytes", lineno, sizeof(line) - 1);
			goto out_free_scratch;
		}
		memcpy(line, text + pos, line_len);
		line[line_len] = '\0';
		pos += line_len + 1;
		if (memchr(line, '\0', line_len)) {
			rc = vg_errf(err, errlen, -EINVAL, "line %u: holds a NUL byte", lineno);
			goto out_free_scratch;
		}
		if (line_len && line[line_len - 1] == '\r')
			line[line_len - 1] = '\0';

		p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (!eq) {
			rc = vg_errf(err, errlen, -EINVAL, "line %u: expected 'name = value'", lineno);
			goto out_free_scratch;
		}
		name_end = eq;
		while (name_end > p && isspace((unsigned char)name_end[-1]))
			name_end--;
		value = eq + 1;
		while (isspace((unsigned char)*value))
			value++;
		/* A '#' outside quotes ends the value: "shards = 4  # one per core". */
		if (*value != '"') {
			char *hash = strchr(value, '#');
			if (hash)
				*hash = '\0';
		}
		if (name_end == p || unquote(value) < 0) {
			rc = vg_errf(err, errlen, -EINVAL, "line %u: expected 'name = value'", lineno);
			goto out_free_scratch;
		}
		rc = set_one(set, scratch, p, (size_t)(name_end - p), value, at_runtime, sub, sizeof(sub));
		if (rc < 0) {
			vg_errf(err, errlen, rc, "line %u: %s", lineno, sub);
			goto out_free_scratch;
		}
		applied++;
	}
	commit_scratch(set, scratch);
	rc = applied;

out_free_scratch:
	free_scratch(scratch, set->n);
	return rc;
}

int vg_conf_load_file(const struct vg_conf_set *set, const char *path, bool at_runtime, char *err, size_t errlen)
{
	char sub[320];
	uint8_t *text;
	size_t len;
	int rc;

	rc = vg_file_read(path, VG_CONF_FILE_MAX, &text, &len);
	if (rc == -EINVAL || rc == -EFBIG)
		return vg_errf(err, errlen, rc, "%s: not a regular file of at most %u bytes", path, VG_CONF_FILE_MAX);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "%s: %s", path, vg_strerror(rc));
	rc = vg_conf_parse(set, (const char *)text, len, at_runtime, sub, sizeof(sub));
	if (rc < 0)
		vg_errf(err, errlen, rc, "%s: %s", path, sub);
	free(text);
	return rc;
}

static int format_value(const void *obj, const struct vg_conf_entry *e, char *buf, size_t len)
{
	const char *field = (const char *)obj + e->offset;
	int n;

	switch (e->type) {
	case VG_CONF_TYPE_BOOL: {
		bool b;
		memcpy(&b, field, sizeof(b));
		n = snprintf(buf, len, "%s", b ? "yes" : "no");
		break;
	}
	case VG_CONF_TYPE_INT: {
		int64_t x;
		memcpy(&x, field, sizeof(x));
		n = snprintf(buf, len, "%" PRId64, x);
		break;
	}
	case VG_CONF_TYPE_DOUBLE: {
		double d;
		memcpy(&d, field, sizeof(d));
		n = snprintf(buf, len, "%.17g", d);
		break;
	}
	case VG_CONF_TYPE_STRING:
		n = snprintf(buf, len, "\"%s\"", field);
		break;
	case VG_CONF_TYPE_ENUM: {
		int idx;
		memcpy(&idx, field, sizeof(idx));
		n = snprintf(buf, len, "%s", e->choices[idx]);
		break;
	}
	default:
		return -EINVAL;
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int vg_conf_get_value(const struct vg_conf_set *set, const char *name, char *buf, size_t len)
{
	const struct vg_conf_entry *e;
	size_t t;

	e = find_entry(set, name, strlen(name), &t);
	if (!e)
		return -ENOENT;
	if (e->flags & VG_CONF_SECRET) {
		int n = snprintf(buf, len, "(secret)");
		return n < 0 || (size_t)n >= len ? -ENOSPC : n;
	}
	return format_value(set->objs[t], e, buf, len);
}

static void describe_bounds(const struct vg_conf_entry *e, char *buf, size_t len)
{
	size_t used;

	switch (e->type) {
	case VG_CONF_TYPE_INT:
		snprintf(buf, len, "%.0f..%.0f", e->min, e->max);
		break;
	case VG_CONF_TYPE_DOUBLE:
		snprintf(buf, len, "%g..%g", e->min, e->max);
		break;
	case VG_CONF_TYPE_BOOL:
		snprintf(buf, len, "yes|no");
		break;
	case VG_CONF_TYPE_STRING:
		snprintf(buf, len, "text of at most %zu bytes", e->size - 1);
		break;
	case VG_CONF_TYPE_ENUM:
		buf[0] = '\0';
		for (int i = 0; e->choices[i]; i++) {
			used = strlen(buf);
			snprintf(buf + used, len - used, "%s%s", i ? "|" : "", e->choices[i]);
		}
		break;
	}
}

int vg_conf_write_sample(const struct vg_conf_set *set, FILE *out)
{
	char bounds[256];

	fprintf(out, "# Vigil configuration. Every setting is shown with its default; uncomment to change.\n");
	for (size_t t = 0; t < set->n; t++) {
		const struct vg_conf_table *table = set->tables[t];

		fprintf(out, "\n# ---- %s ----\n", table->component);
		for (size_t i = 0; i < table->n_entries; i++) {
			const struct vg_conf_entry *e = &table->entries[i];

			describe_bounds(e, bounds, sizeof(bounds));
			fprintf(out, "\n# %s\n# %s; %s\n", e->help, bounds,
				e->flags & VG_CONF_MUTABLE ? "changes at run time (SIGHUP)" : "read at start-up");
			if (e->flags & VG_CONF_SECRET)
				fprintf(out, "#%s = \n", e->name);
			else if (e->type == VG_CONF_TYPE_STRING)
				fprintf(out, "#%s = \"%s\"\n", e->name, e->default_value);
			else
				fprintf(out, "#%s = %s\n", e->name, e->default_value);
		}
	}
	return ferror(out) ? -EIO : 0;
}

int vg_conf_write_help(const struct vg_conf_set *set, FILE *out)
{
	char bounds[256];

	for (size_t t = 0; t < set->n; t++) {
		const struct vg_conf_table *table = set->tables[t];

		for (size_t i = 0; i < table->n_entries; i++) {
			const struct vg_conf_entry *e = &table->entries[i];

			describe_bounds(e, bounds, sizeof(bounds));
			fprintf(out, "  %-32s %s (%s; default %s)\n", e->name, e->help, bounds,
				e->flags & VG_CONF_SECRET ? "none" : e->default_value);
		}
	}
	return ferror(out) ? -EIO : 0;
}
