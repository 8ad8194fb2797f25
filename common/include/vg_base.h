/**
 * @file vg_base.h
 * What every Vigil source file uses: the error convention, wrapped compiler attributes and the
 * defensive-branch markers.
 *
 * The error convention, everywhere in Vigil: a function returning `int` returns 0 (or a count)
 * on success and a negative errno on failure (-EINVAL, -ENOMEM, ...), never -1 with errno set.
 * Out-parameters are marked `OUT:` and are left untouched on error. Cleanup on error paths uses
 * goto labels named for what they undo (`out_free_rows:`), as in the Linux kernel.
 */
#ifndef VG_BASE_H
#define VG_BASE_H

#include <stddef.h>

#define VG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define VG_CACHE_LINE 64
#define VG_CACHE_ALIGNED __attribute__((aligned(VG_CACHE_LINE)))
#define VG_PRINTF(fmt_arg, first_arg) __attribute__((format(printf, fmt_arg, first_arg)))
#define VG_LIKELY(x) __builtin_expect(!!(x), 1)
#define VG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VG_WARN_UNUSED __attribute__((warn_unused_result))
#define VG_MAYBE_UNUSED __attribute__((unused))

/*
 * VG_ALWAYS(x) and VG_NEVER(x) mark defensive branches that should be unreachable (SQLite's
 * ALWAYS/NEVER): in debug builds they assert, in release builds they evaluate to x, so the
 * defensive code still runs and the appliance stays up.
 */
#ifdef NDEBUG
#define VG_ALWAYS(x) (x)
#define VG_NEVER(x) (x)
#else
#include <assert.h>
#define VG_ALWAYS(x) ((x) ? 1 : (assert(0 && "VG_ALWAYS failed: " #x), 0))
#define VG_NEVER(x) ((x) ? (assert(0 && "VG_NEVER failed: " #x), 1) : 0)
#endif

/**
 * The text of a negative errno (vg_strerror(-ENOMEM) is "Cannot allocate memory"). Thread-safe;
 * the string is static.
 */
const char *vg_strerror(int neg_errno);

/**
 * Write a one-line reason into ERR (ERRLEN bytes, may be NULL/0) and return RC, so that an error
 * path reads `return vg_errf(err, errlen, -EINVAL, "line %u: ...", n);`.
 */
int vg_errf(char *err, size_t errlen, int rc, const char *fmt, ...) VG_PRINTF(4, 5);

#endif /* VG_BASE_H */
