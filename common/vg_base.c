/* The error text and one-line reasons of the -errno convention (vg_base.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vg_base.h"

const char *vg_strerror(int neg_errno)
{
	/* strerrordesc_np: static, thread-safe, no locale. Unknown numbers get NULL. */
	const char *s = strerrordesc_np(neg_errno < 0 ? -neg_errno : neg_errno);

	return s ? s : "Unknown error";
}

int vg_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}
