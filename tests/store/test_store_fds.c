/*
 * A long-lived process opens and closes the store many times (vigild serve applies review
 * outcomes that way): each close must close exactly the store's own descriptors. It once zeroed
 * its deployments before closing their files, so it closed fd 0 twice and leaked the real ones;
 * vigild then lost the control connection that had been given fd 0 by then.
 */
#include <dirent.h>
#include <errno.h>

#include "vg_test.h"
#include "store_test_util.h"

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

int main(void)
{
	char dir[256], key[300], err[256];
	int sentinel[2];

	if (st_scratch(dir, sizeof(dir), key, sizeof(key), 0x5a) < 0)
		return 1;
	/* Descriptors the caller holds, the lowest numbers among them, as a daemon's would be. */
	close(0);
	CHECK_EQ_INT(pipe(sentinel), 0);
	CHECK_EQ_INT(sentinel[0], 0);
	int before = open_fds();
	for (int round = 0; round < 5; round++) {
		struct store_conf c = { .dir = dir, .appliance_key_path = key };
		struct store *st = NULL;
		int rc = store_open(&st, &c, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "store_open: %s\n", err);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(store_deployment_open(st, 7), 0);
		store_close(&st);
		CHECK(st == NULL);
		CHECK_EQ_INT(open_fds(), before);
		CHECK_EQ_INT(fcntl(sentinel[0], F_GETFD), 0); /* still the caller's pipe */
		CHECK(fcntl(sentinel[1], F_GETFD) >= 0);
	}
	close(sentinel[0]);
	close(sentinel[1]);
	st_rm_rf(dir);
	return vg_test_exit();
}
