/*
 * Disk full: the put fails with -ENOSPC, the caller gets a handle marked unsaved (the alert is
 * still raised), a counter moves, nothing acknowledged before is lost, and once space comes back
 * the store goes on. The full disk is a 1 MiB tmpfs mounted in a private mount namespace where
 * this process may (root); otherwise (or with STORE_TEST_NO_MOUNT=1) a file-size rlimit, with
 * SIGXFSZ ignored, plays the full disk.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "store_test_util.h"
#include "vg_test.h"

#define DEP 7

static int put(struct store *st, uint64_t i, struct store_handle *h)
{
	static uint8_t buf[30000];
	struct store_alert a;
	struct store_crop c = { .format = STORE_CROP_JPEG, .data = buf, .len = sizeof(buf) };

	st_fake_jpeg(buf, sizeof(buf), i);
	st_alert(&a, DEP, i);
	return store_put(st, &a, &c, h);
}

static int check(struct store *st, const struct store_handle *h, uint64_t i)
{
	static uint8_t want[30000], got[30000];
	size_t jl = 0;
	int rc = store_get(st, h, NULL, got, sizeof(got), &jl);

	st_fake_jpeg(want, sizeof(want), i);
	return rc < 0 ? rc : jl == sizeof(want) && !memcmp(want, got, jl) ? 0 : -EILSEQ;
}

int main(void)
{
	char dir[256], key[300], sdir[320], filler[340], err[256];
	struct store_handle h[64], bad;
	struct store_stats s;
	struct store *st = NULL;
	bool tmpfs = false;
	int n = 0, rc = 0;

	if (st_scratch(dir, sizeof(dir), key, sizeof(key), 0x66) < 0)
		return 1;
	snprintf(sdir, sizeof(sdir), "%s/mnt", dir);
	mkdir(sdir, 0700);
	/* Before any thread exists: unshare(CLONE_NEWNS) refuses a threaded process. */
	if (!getenv("STORE_TEST_NO_MOUNT") && unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount("tmpfs", sdir, "tmpfs", 0, "size=1m,mode=0700") == 0)
		tmpfs = true;
	fprintf(stderr, "full disk: %s\n", tmpfs ? "1 MiB tmpfs" : "RLIMIT_FSIZE 600 KB");
	snprintf(filler, sizeof(filler), "%s/filler", sdir);
	snprintf(sdir, sizeof(sdir), "%s/mnt/store", dir);

	struct store_conf c = { .dir = sdir, .appliance_key_path = key, .slots = 4, .group_deadline_us = 100,
				/* O_DIRECT on the tmpfs; not under the rlimit, which cuts a write to an
				 * unaligned length that O_DIRECT refuses with -EINVAL */
				.o_direct = tmpfs };
	rc = store_open(&st, &c, err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	if (tmpfs) {
		/* leave ~700 KB: some records fit, then the disk is full */
		FILE *f = fopen(filler, "w");
		static uint8_t z[256 << 10];
		CHECK(f && fwrite(z, 1, sizeof(z), f) == sizeof(z));
		fclose(f);
	} else {
		struct rlimit rl = { .rlim_cur = 600000, .rlim_max = RLIM_INFINITY };
		signal(SIGXFSZ, SIG_IGN);
		CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &rl), 0);
	}
	for (n = 0; n < 64; n++) {
		rc = put(st, (uint64_t)n, &h[n]);
		if (rc < 0)
			break;
		CHECK(h[n].saved);
	}
	fprintf(stderr, "%d records stored before the disk filled (rc %d)\n", n, rc);
	CHECK_EQ_INT(rc, -ENOSPC);
	CHECK(n > 5);
	CHECK(!h[n].saved); /* the alert goes on, marked unsaved */
	CHECK_EQ_INT(h[n].deployment, DEP);
	CHECK_EQ_INT(put(st, 1000, &bad), -ENOSPC); /* still full: still told */
	store_stats(st, &s);
	CHECK_EQ_INT(s.enospc, 2);
	CHECK_EQ_INT(s.unsaved, 2);
	CHECK_EQ_INT(s.acked, n);
	/* tmpfs takes O_DIRECT since Linux 6.6; older kernels refuse it and the store falls back */
	if (tmpfs)
		fprintf(stderr, "O_DIRECT %s\n", s.fallback_odirect ? "refused: buffered writes (counted)" : "accepted");
	for (int i = 0; i < n; i++)
		CHECK_EQ_INT(check(st, &h[i], (uint64_t)i), 0);

	/* space comes back: the store writes again, after the last good record */
	if (tmpfs) {
		CHECK_EQ_INT(unlink(filler), 0);
	} else {
		struct rlimit rl = { .rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY };
		setrlimit(RLIMIT_FSIZE, &rl);
	}
	CHECK_EQ_INT(put(st, 500, &h[n]), 0);
	CHECK(h[n].saved);
	CHECK_EQ_INT(check(st, &h[n], 500), 0);
	store_close(&st);

	c.o_direct = false;
	CHECK_EQ_INT(store_open(&st, &c, err, sizeof(err)), 0);
	if (st) {
		store_stats(st, &s);
		CHECK_EQ_INT(s.recovered, n + 1);
		CHECK_EQ_INT(s.corrupt_dropped + s.torn_dropped, 0);
		for (int i = 0; i < n; i++)
			CHECK_EQ_INT(check(st, &h[i], (uint64_t)i), 0);
		CHECK_EQ_INT(check(st, &h[n], 500), 0);
		store_close(&st);
	}
	if (tmpfs)
		umount2(sdir, MNT_DETACH);
	snprintf(sdir, sizeof(sdir), "%s/mnt", dir);
	umount2(sdir, MNT_DETACH);
	st_rm_rf(dir);
	return vg_test_exit();
}
