/*
 * The test harness every C test uses: CHECK() records a failure with its line and goes on, so one
 * run shows every broken assertion; vg_test_exit() turns the tally into meson's exit codes
 * (0 pass, 1 fail, 77 skip), as liburing's tests do.
 */
#ifndef VG_TEST_H
#define VG_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

#define CHECK_EQ_STR(a, b)                                                                        \
	do {                                                                                      \
		const char *sa_ = (a), *sb_ = (b);                                                \
		if (strcmp(sa_, sb_) != 0) {                                                      \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__, \
				__LINE__, #a, #b, sa_, sb_);                                      \
			vg_test_failures++;                                               \
		}                                                                                 \
	} while (0)

#define VG_TEST_SKIP 77

static inline int vg_test_exit(void)
{
	return vg_test_failures ? 1 : 0;
}

/*
 * A fresh directory for one test under TMPDIR (or /tmp), named after the test, in DIR (CAP
 * bytes). Returns DIR, or NULL (with a line on stderr) when it could not be made. The one way the
 * C tests make their scratch space; each test removes what it made.
 */
#include <string.h>
static inline char *vg_test_tmpdir(const char *name, char *dir, size_t cap)
{
	const char *base = getenv("TMPDIR");
	int n = snprintf(dir, cap, "%s/vigil-%s-XXXXXX", base && *base ? base : "/tmp", name);

	if (n < 0 || (size_t)n >= cap || !mkdtemp(dir)) {
		fprintf(stderr, "vg_test_tmpdir(%s): cannot make a scratch directory\n", name);
		return NULL;
	}
	return dir;
}

#endif /* VG_TEST_H */
