/*
 * Crash safety (DESIGN.md invariant 5): a child writes records and reports every
 * acknowledgement over a pipe; it is SIGKILLed at a random moment (during recovery, between
 * groups, mid-fdatasync), many times over the same store. After each kill the store is opened
 * again and every record ever acknowledged must be there, byte for byte.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "store_test_util.h"
#include "vg_test.h"

#define DEP 0xC0FFEE
#define MAX_ACKS 200000

struct ack_msg {
	struct store_handle h;
	uint64_t i;
	uint32_t len;
};

static int ack_fd;
static struct ack_msg acks[MAX_ACKS];
static size_t n_acks;

static uint32_t len_of(uint64_t i)
{
	return 2000 + (uint32_t)(i * 7919 % 6000);
}

static void child_ack(void *arg, int rc, const struct store_handle *h)
{
	struct ack_msg m = { .h = *h, .i = (uint64_t)(uintptr_t)arg, .len = len_of((uint64_t)(uintptr_t)arg) };

	if (rc == 0 && write(ack_fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(3);
}

static void child(const char *dir, const char *key, uint64_t base, unsigned seed)
{
	struct store_conf c = { .dir = dir, .appliance_key_path = key, .slots = 16,
				.group_max = 1 + seed % 8, .group_deadline_us = seed % 1500,
				.segment_bytes = 256 << 10 /* rolls too */ };
	struct store *st;
	static uint8_t buf[8192];
	char err[256];

	if (store_open(&st, &c, err, sizeof(err)) < 0 || store_deployment_open(st, DEP) < 0)
		_exit(2);
	for (uint64_t i = base;; i++) {
		struct store_alert a;
		struct store_crop cr = { .format = STORE_CROP_JPEG, .data = buf, .len = len_of(i) };
		int rc;

		st_fake_jpeg(buf, cr.len, i);
		st_alert(&a, DEP, i);
		while ((rc = store_put_async(st, &a, &cr, child_ack, (void *)(uintptr_t)i)) == -EAGAIN)
			usleep(100);
		if (rc < 0)
			_exit(4);
	}
}

static void drain(int fd)
{
	struct ack_msg m;
	size_t got = 0;
	ssize_t r;

	while ((r = read(fd, (uint8_t *)&m + got, sizeof(m) - got)) > 0) {
		got += (size_t)r;
		if (got == sizeof(m)) {
			if (n_acks < MAX_ACKS)
				acks[n_acks++] = m;
			got = 0;
		}
	}
}

int main(void)
{
	char dir[256], key[300], err[256];
	static uint8_t want[8192], got[8192];
	const char *san = getenv("ASAN_OPTIONS") ? "asan" : getenv("TSAN_OPTIONS") ? "tsan" : getenv("UBSAN_OPTIONS") ? "ubsan" : NULL;
	int kills = san ? 12 : 40; /* sanitizers run the same path, slower */
	unsigned seed = (unsigned)time(NULL);
	uint64_t torn_total = 0;

	if (st_scratch(dir, sizeof(dir), key, sizeof(key), 0x44) < 0)
		return 1;
	fprintf(stderr, "seed %u, %d kills\n", seed, kills);
	srand(seed);
	for (int round = 0; round < kills; round++) {
		int p[2];
		pid_t pid;
		int status;

		if (pipe(p) < 0)
			return 1;
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			ack_fd = p[1];
			child(dir, key, (uint64_t)round * 1000000, (unsigned)rand());
		}
		close(p[1]);
		usleep((useconds_t)(rand() % 60000)); /* 0-60 ms: some die in recovery, most mid-stream */
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		drain(p[0]);
		close(p[0]);

		struct store_conf c = { .dir = dir, .appliance_key_path = key, .slots = 4 };
		struct store *st = NULL;
		int rc = store_open(&st, &c, err, sizeof(err));
		CHECK_EQ_INT(rc, 0);
		if (rc < 0) {
			fprintf(stderr, "round %d: %s\n", round, err);
			break;
		}
		struct store_stats s;
		store_stats(st, &s);
		torn_total += s.torn_dropped;
		CHECK_EQ_INT(s.corrupt_dropped, 0); /* a crash tears only the tail, never the middle */
		CHECK(store_count(st) >= n_acks);
		int lost = 0;
		for (size_t k = 0; k < n_acks; k++) {
			struct store_alert a;
			size_t jl = 0;

			rc = store_get(st, &acks[k].h, &a, got, sizeof(got), &jl);
			st_fake_jpeg(want, acks[k].len, acks[k].i);
			if (rc < 0 || jl != acks[k].len || memcmp(want, got, jl) || a.track != acks[k].i) {
				if (lost++ < 5)
					fprintf(stderr, "round %d: acknowledged record %llu (seq %llu) lost: %d\n", round,
						(unsigned long long)acks[k].i, (unsigned long long)acks[k].h.seq, rc);
			}
		}
		CHECK_EQ_INT(lost, 0);
		store_close(&st);
	}
	fprintf(stderr, "%zu acknowledged records verified after %d kills; %llu torn tails dropped\n", n_acks, kills,
		(unsigned long long)torn_total);
	CHECK(n_acks > 0);
	st_rm_rf(dir);
	return vg_test_exit();
}
