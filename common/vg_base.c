/* The error text of the -errno convention (vg_base.h). */
#include <string.h>

#include "vg_base.h"

const char *vg_strerror(int neg_errno)
{
	/* strerrordesc_np: static, thread-safe, no locale. Unknown numbers get NULL. */
	const char *s = strerrordesc_np(neg_errno < 0 ? -neg_errno : neg_errno);

	return s ? s : "Unknown error";
}
