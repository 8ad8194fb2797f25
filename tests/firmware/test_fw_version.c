/* firmware/fw_version: what an update's version may be, and which of two is newer. */
#include <errno.h>
#include <string.h>

#include "vg_test.h"
#include "fw.h"

int main(void)
{
	struct fw_version a = { 9, 9, 9 }, b;

	CHECK_EQ_INT(fw_version_parse("1.4.2", &a), 0);
	CHECK(a.major == 1 && a.minor == 4 && a.patch == 2);
	CHECK_EQ_INT(fw_version_parse("0.0.0", &b), 0);
	CHECK_EQ_INT(fw_version_parse("65535.0.1", &b), 0);
	CHECK_EQ_INT(b.major, 65535);

	/* Outside text: everything but the exact form is refused, and the output left alone. */
	static const char *const bad[] = { "", "1", "1.2", "1.2.3.4", "1.2.", ".1.2", "01.2.3", "1.02.3", "-1.2.3",
					   "+1.2.3", "1.2.3 ", " 1.2.3", "1.2.3a", "65536.0.0", "1..3", "1.2.3\n",
					   "99999999999999999999.0.0" };
	a = (struct fw_version){ 7, 7, 7 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(fw_version_parse(bad[i], &a), -EINVAL);
		if (a.major != 7)
			fprintf(stderr, "changed by '%s'\n", bad[i]);
		CHECK(a.major == 7 && a.minor == 7 && a.patch == 7);
	}

	/* Order: numeric per component, not by text ("1.10.0" is newer than "1.9.9"). */
	struct fw_version v19, v110, v110b;
	CHECK_EQ_INT(fw_version_parse("1.9.9", &v19), 0);
	CHECK_EQ_INT(fw_version_parse("1.10.0", &v110), 0);
	CHECK_EQ_INT(fw_version_parse("1.10.0", &v110b), 0);
	CHECK(fw_version_cmp(&v19, &v110) < 0);
	CHECK(fw_version_cmp(&v110, &v19) > 0);
	CHECK_EQ_INT(fw_version_cmp(&v110, &v110b), 0);

	/* The running build's version is a version. */
	CHECK_EQ_INT(fw_version_parse(fw_version_running(), &b), 0);
	return vg_test_exit();
}
