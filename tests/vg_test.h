/*
 * The test harness every C test uses: CHECK() records a failure with its line and goes on, so one
 * run shows every broken assertion; vg_test_exit() turns the tally into meson's exit codes
 * (0 pass, 1 fail, 77 skip), as liburing's tests do.
 */
#ifndef VG_TEST_H
#define VG_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int vg_test_failures;

#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			vg_test_failures++;                                               \
		}                                                                         \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                        \
	do {                                                                                      \
		long long va_ = (long long)(a), vb_ = (long long)(b);                             \
		if (va_ != vb_) {                                                                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, \
				__LINE__, #a, #b, va_, vb_);                                      \
			vg_test_failures++;                                               \
		}                                                                                 \
	} while (0)

#define VG_TEST_SKIP 77

static inline int vg_test_exit(void)
{
	return vg_test_failures ? 1 : 0;
}

#endif /* VG_TEST_H */
