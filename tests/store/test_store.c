/*
 * The store as the pipeline and mgmt see it: records come back as put, encrypted at rest,
 * crypto-shredded, expired by retention, and torn or flipped bytes are never served.
 */
#include <errno.h>
#include <math.h>
#include <turbojpeg.h>

#include "../../store/store_int.h"
#include "store_test_util.h"
#include "vg_test.h"

#define DEP 0x1234

static char dir[256], key[300];
static unsigned n_async_acks;
static uint64_t fake_now = 1700000000ull * 1000000000ull;

static uint64_t test_clock(void *arg)
{
	(void)arg;
	return __atomic_load_n(&fake_now, __ATOMIC_RELAXED); /* the store thread reads it too */
}

struct deletions {
	int n, n_retention, n_shred;
	uint64_t seqs[256];
};
static struct deletions dels;

static void on_delete(void *arg, const struct store_handle *h, enum store_outcome o, enum store_delete_reason r)
{
	(void)arg;
	(void)o;
	if (dels.n < 256)
		dels.seqs[dels.n] = h->seq;
	dels.n++;
	if (r == STORE_DELETE_RETENTION) /* atomic: the automatic sweep runs while main() polls */
		__atomic_fetch_add(&dels.n_retention, 1, __ATOMIC_RELEASE);
	dels.n_shred += r == STORE_DELETE_SHRED;
}

static struct store_conf conf_for(const char *d)
{
	return (struct store_conf){ .dir = d, .appliance_key_path = key, .group_deadline_us = 200,
				    .slots = 16, .clock = test_clock, .on_delete = on_delete };
}

static struct store *open_ok(struct store_conf *c)
{
	struct store *st = NULL;
	char err[256] = "";
	int rc = store_open(&st, c, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "store_open: %d %s\n", rc, err);
	CHECK_EQ_INT(rc, 0);
	return st;
}

static int put_jpeg(struct store *st, uint64_t dep, uint64_t i, size_t len, struct store_handle *h)
{
	static uint8_t buf[64 << 10];
	struct store_alert a;
	struct store_crop c = { .format = STORE_CROP_JPEG, .data = buf, .len = len };

	st_fake_jpeg(buf, len, i);
	st_alert(&a, dep, i);
	return store_put(st, &a, &c, h);
}

static int check_jpeg(struct store *st, const struct store_handle *h, uint64_t i, size_t len)
{
	static uint8_t want[64 << 10], got[64 << 10];
	struct store_alert a, wa;
	size_t jl = 0;
	int rc = store_get(st, h, &a, got, sizeof(got), &jl);

	if (rc < 0)
		return rc;
	st_fake_jpeg(want, len, i);
	st_alert(&wa, h->deployment, i);
	if (jl != len || memcmp(want, got, len) || strcmp(a.subject, wa.subject) || a.track != wa.track ||
	    a.value != wa.value || a.box[3] != wa.box[3] || a.time_ns != wa.time_ns)
		return -EILSEQ;
	return 0;
}

/* An RGB crop goes in, a JPEG of the same face comes out (encoded on the store thread). */
static void test_rgb_roundtrip(void)
{
	struct store_conf c = conf_for(dir);
	struct store *st = open_ok(&c);
	enum { W = 96, H = 112 };
	static uint8_t rgb[W * H * 3], jpeg[64 << 10], back[W * H * 3];
	struct store_crop crop = { .format = STORE_CROP_RGB, .data = rgb, .len = sizeof(rgb), .width = W, .height = H };
	struct store_alert a, got;
	struct store_handle h;
	size_t jl = 0;
	int w, hh, ss, cs;

	if (!st)
		return;
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			rgb[(y * W + x) * 3 + 0] = (uint8_t)(x * 2);
			rgb[(y * W + x) * 3 + 1] = (uint8_t)(y * 2);
			rgb[(y * W + x) * 3 + 2] = (uint8_t)(128 + x - y);
		}
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	st_alert(&a, DEP, 1);
	CHECK_EQ_INT(store_put(st, &a, &crop, &h), 0);
	CHECK(h.saved);
	CHECK_EQ_INT(store_get(st, &h, &got, jpeg, sizeof(jpeg), &jl), 0);
	CHECK(!strcmp(got.subject, a.subject));
	CHECK(!strcmp(got.camera, a.camera) && !strcmp(got.model, a.model) && got.pts == a.pts);
	CHECK(jl > 4 && jpeg[0] == 0xFF && jpeg[1] == 0xD8);
	tjhandle tj = tjInitDecompress();
	CHECK_EQ_INT(tjDecompressHeader3(tj, jpeg, (unsigned long)jl, &w, &hh, &ss, &cs), 0);
	CHECK_EQ_INT(w, W);
	CHECK_EQ_INT(hh, H);
	CHECK_EQ_INT(tjDecompress2(tj, jpeg, (unsigned long)jl, back, W, 0, H, TJPF_RGB, 0), 0);
	double err = 0;
	for (size_t k = 0; k < sizeof(rgb); k++)
		err += fabs((double)rgb[k] - back[k]);
	CHECK(err / sizeof(rgb) < 4.0); /* quality 90 of a smooth gradient */
	tjDestroy(tj);

	/* bad crops are refused, and nothing is queued for them */
	crop.len--;
	CHECK_EQ_INT(store_put(st, &a, &crop, &h), -EINVAL);
	CHECK(!h.saved);
	a.deployment = 999;
	crop.len++;
	CHECK_EQ_INT(store_put(st, &a, &crop, &h), -ENOENT);
	store_close(&st);
	CHECK(st == NULL);
}

/* Records survive close and reopen; sequence numbers go on increasing; files are encrypted. */
static void test_reopen_and_at_rest(void)
{
	struct store_conf c = conf_for(dir);
	struct store *st = open_ok(&c);
	struct store_handle h[20];
	struct store_stats s;
	static uint8_t probe[64 << 10];

	if (!st)
		return;
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	uint64_t before = store_count(st);
	for (int i = 0; i < 20; i++) {
		CHECK_EQ_INT(put_jpeg(st, DEP, 100 + i, 20000 + i * 997, &h[i]), 0);
		CHECK(h[i].saved);
		if (i)
			CHECK(h[i].seq > h[i - 1].seq);
	}
	store_close(&st);
	st = open_ok(&c);
	if (!st)
		return;
	CHECK_EQ_INT(store_count(st), before + 20);
	for (int i = 0; i < 20; i++)
		CHECK_EQ_INT(check_jpeg(st, &h[i], 100 + i, 20000 + i * 997), 0);
	store_stats(st, &s);
	CHECK_EQ_INT(s.recovered, before + 20);
	CHECK_EQ_INT(s.torn_dropped + s.corrupt_dropped, 0);
	struct store_handle n;
	CHECK_EQ_INT(put_jpeg(st, DEP, 200, 25000, &n), 0);
	CHECK(n.seq > h[19].seq);
	store_close(&st);

	/* A stolen disk shows no faces: no JPEG marker, no run of crop bytes, no subject id. */
	static const uint8_t soi[] = { 0xFF, 0xD8, 0xFF, 0xE0 };
	st_fake_jpeg(probe, 20000, 100);
	CHECK(!st_dir_contains(dir, soi, sizeof(soi)));
	CHECK(!st_dir_contains(dir, probe + 1000, 32));
	CHECK(!st_dir_contains(dir, "SUBJECT-SECRET", 14));
	CHECK(st_dir_contains(dir, "VGR1", 4)); /* the search itself works: headers are there */

	/* Another appliance's key opens nothing; a key others can read is refused. */
	char dir2[256], key2[300];
	CHECK_EQ_INT(st_scratch(dir2, sizeof(dir2), key2, sizeof(key2), 0x77), 0);
	c.appliance_key_path = key2;
	char err[256];
	CHECK_EQ_INT(store_open(&st, &c, err, sizeof(err)), -EKEYREJECTED);
	CHECK(st == NULL);
	chmod(key2, 0644);
	c.appliance_key_path = key2;
	CHECK_EQ_INT(store_open(&st, &c, err, sizeof(err)), -EPERM);
	st_rm_rf(dir2);
}

/* Shredding: the key goes first, then every record is unreadable and reported. */
static void test_shred(void)
{
	char d[256], k[300];
	CHECK_EQ_INT(st_scratch(d, sizeof(d), k, sizeof(k), 0x11), 0);
	strcpy(key, k);
	struct store_conf c = conf_for(d);
	struct store *st = open_ok(&c);
	struct store_handle h[5], other;
	char path[400];

	if (!st)
		return;
	CHECK_EQ_INT(store_deployment_open(st, 1), 0);
	CHECK_EQ_INT(store_deployment_open(st, 2), 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(put_jpeg(st, 1, i, 21000, &h[i]), 0);
	CHECK_EQ_INT(put_jpeg(st, 2, 9, 21000, &other), 0);
	memset(&dels, 0, sizeof(dels));
	CHECK_EQ_INT(store_deployment_shred(st, 1), 0);
	CHECK_EQ_INT(dels.n_shred, 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(check_jpeg(st, &h[i], i, 21000), -ENOENT);
	CHECK_EQ_INT(put_jpeg(st, 1, 7, 21000, &h[0]), -ENOENT);
	CHECK(!h[0].saved);
	CHECK_EQ_INT(check_jpeg(st, &other, 9, 21000), 0);
	CHECK_EQ_INT(store_deployment_open(st, 2), 0); /* again: still one copy of it */
	CHECK_EQ_INT(store_count(st), 1);
	CHECK_EQ_INT(put_jpeg(st, 2, 10, 21000, &h[1]), 0);
	CHECK_EQ_INT(store_deployment_open(st, 3), 0); /* takes the shredded one's place */
	CHECK_EQ_INT(put_jpeg(st, 3, 11, 21000, &h[2]), 0);
	CHECK_EQ_INT(store_count(st), 3);
	CHECK_EQ_INT(check_jpeg(st, &h[1], 10, 21000), 0);
	CHECK_EQ_INT(check_jpeg(st, &h[2], 11, 21000), 0);
	snprintf(path, sizeof(path), "%s/dep-%016x", d, 1);
	CHECK(access(path, F_OK) < 0);
	store_close(&st);
	st = open_ok(&c);
	if (st) {
		CHECK_EQ_INT(store_count(st), 3);
		CHECK_EQ_INT(check_jpeg(st, &other, 9, 21000), 0);
		CHECK_EQ_INT(check_jpeg(st, &h[2], 11, 21000), 0);
		store_close(&st);
	}
	st_rm_rf(d);
}

/* Retention by outcome on a controllable clock; every deletion reported; segments removed. */
static void test_retention(void)
{
	char d[256], k[300];
	CHECK_EQ_INT(st_scratch(d, sizeof(d), k, sizeof(k), 0x22), 0);
	strcpy(key, k);
	struct store_conf c = conf_for(d);
	c.segment_bytes = 100000; /* about 4 records a segment: the test sees segments go */
	c.retain_confirmed_s = 31 * 86400;
	c.retain_rejected_s = 3600;
	c.retain_unreviewed_s = 86400;
	struct store *st = open_ok(&c);
	struct store_handle h[12];
	struct store_stats s;

	if (!st)
		return;
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	for (int i = 0; i < 12; i++)
		CHECK_EQ_INT(put_jpeg(st, DEP, i, 22000, &h[i]), 0);
	CHECK(h[11].segment >= 2);
	for (int i = 0; i < 12; i++)
		CHECK_EQ_INT(store_outcome_set(st, &h[i], i < 4 ? STORE_OUTCOME_CONFIRMED
						       : i < 8 ? STORE_OUTCOME_REJECTED : STORE_OUTCOME_UNREVIEWED), 0);
	memset(&dels, 0, sizeof(dels));
	__atomic_fetch_add(&fake_now, 1800ull * 1000000000ull, __ATOMIC_RELAXED);
	CHECK_EQ_INT(store_sweep(st), 0);
	__atomic_fetch_add(&fake_now, 3600ull * 1000000000ull, __ATOMIC_RELAXED); /* 1.5 h: the rejected ones go */
	CHECK_EQ_INT(store_sweep(st), 4);
	CHECK_EQ_INT(dels.n_retention, 4);
	CHECK_EQ_INT(check_jpeg(st, &h[4], 4, 22000), -ENOENT);
	CHECK_EQ_INT(check_jpeg(st, &h[0], 0, 22000), 0);
	CHECK_EQ_INT(check_jpeg(st, &h[8], 8, 22000), 0);
	store_close(&st);

	/* the decisions and deletions are durable: reopen, then 2 days on */
	st = open_ok(&c);
	if (!st)
		return;
	CHECK_EQ_INT(store_count(st), 8);
	CHECK_EQ_INT(check_jpeg(st, &h[5], 5, 22000), -ENOENT);
	__atomic_fetch_add(&fake_now, 2 * 86400ull * 1000000000ull, __ATOMIC_RELAXED);
	CHECK_EQ_INT(store_sweep(st), 4);
	CHECK_EQ_INT(store_count(st), 4);
	CHECK_EQ_INT(check_jpeg(st, &h[3], 3, 22000), 0);
	__atomic_fetch_add(&fake_now, 31 * 86400ull * 1000000000ull, __ATOMIC_RELAXED);
	CHECK_EQ_INT(store_sweep(st), 4);
	CHECK_EQ_INT(store_count(st), 0);
	CHECK_EQ_INT(dels.n_retention, 12);
	store_stats(st, &s);
	CHECK_EQ_INT(s.deleted, 8);
	/* only the active segment remains */
	char path[400];
	snprintf(path, sizeof(path), "%s/dep-%016x/seg-%08u", d, DEP, 0);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof(path), "%s/dep-%016x/seg-%08u", d, DEP, (unsigned)h[11].segment);
	CHECK(access(path, F_OK) == 0);
	store_close(&st);
	/* a deleted record's bytes are gone from its segment, not just unindexed */
	static uint8_t probe[22000];
	st_fake_jpeg(probe, 22000, 11);
	st = open_ok(&c);
	if (st) {
		CHECK_EQ_INT(store_count(st), 0);
		store_stats(st, &s);
		CHECK_EQ_INT(s.corrupt_dropped, 0); /* punched records are deletions, not damage */
		store_close(&st);
	}
	st_rm_rf(d);
}

static long file_size(const char *p)
{
	struct stat sb;
	return stat(p, &sb) < 0 ? -1 : (long)sb.st_size;
}

/* Torn tails (truncation) and flipped bits: never served, counted, the rest intact. */
static void test_torn_and_flipped(void)
{
	char d[256], k[300], seg[400];
	CHECK_EQ_INT(st_scratch(d, sizeof(d), k, sizeof(k), 0x33), 0);
	strcpy(key, k);
	struct store_conf c = conf_for(d);
	struct store *st = open_ok(&c);
	struct store_handle h[8];
	struct store_stats s;

	if (!st)
		return;
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	for (int i = 0; i < 8; i++)
		CHECK_EQ_INT(put_jpeg(st, DEP, i, 20000 + 100 * i, &h[i]), 0);
	store_close(&st);
	snprintf(seg, sizeof(seg), "%s/dep-%016x/seg-%08u", d, DEP, 0);

	/* 1. the last record torn: cut 5000 bytes off the end */
	long sz = file_size(seg);
	CHECK_EQ_INT(truncate(seg, sz - 5000), 0);
	st = open_ok(&c);
	if (!st)
		return;
	store_stats(st, &s);
	CHECK_EQ_INT(s.recovered, 7);
	CHECK_EQ_INT(s.torn_dropped, 1);
	CHECK_EQ_INT(check_jpeg(st, &h[7], 7, 20700), -ENOENT);
	for (int i = 0; i < 7; i++)
		CHECK_EQ_INT(check_jpeg(st, &h[i], i, 20000 + 100 * i), 0);
	CHECK_EQ_INT(file_size(seg), (long)h[7].offset); /* cut back to the last whole record */
	CHECK_EQ_INT(put_jpeg(st, DEP, 70, 20000, &h[7]), 0); /* appends where the torn one was */
	store_close(&st);

	/* 2. one bit flipped inside record 3's payload */
	int fd = open(seg, O_RDWR);
	uint8_t b;
	CHECK(pread(fd, &b, 1, (off_t)(h[3].offset + 5000)) == 1);
	b ^= 0x10;
	CHECK(pwrite(fd, &b, 1, (off_t)(h[3].offset + 5000)) == 1);
	/* 3. and one bit in record 5's header (its length): the scanner must find record 6 again */
	CHECK(pread(fd, &b, 1, (off_t)(h[5].offset + 9)) == 1);
	b ^= 0x01;
	CHECK(pwrite(fd, &b, 1, (off_t)(h[5].offset + 9)) == 1);
	close(fd);
	st = open_ok(&c);
	if (!st)
		return;
	store_stats(st, &s);
	CHECK_EQ_INT(s.corrupt_dropped, 1);
	CHECK(s.resynced_bytes >= h[5].len);
	CHECK_EQ_INT(s.recovered, 6);
	CHECK_EQ_INT(check_jpeg(st, &h[3], 3, 20300), -ENOENT);
	CHECK_EQ_INT(check_jpeg(st, &h[5], 5, 20500), -ENOENT);
	CHECK_EQ_INT(check_jpeg(st, &h[6], 6, 20600), 0);
	CHECK_EQ_INT(check_jpeg(st, &h[7], 70, 20000), 0);
	CHECK_EQ_INT(check_jpeg(st, &h[2], 2, 20200), 0);
	store_close(&st);

	/* 4. garbage appended (a torn group of a crash) is cut off, and the store goes on */
	fd = open(seg, O_WRONLY | O_APPEND);
	static uint8_t junk[3000];
	memset(junk, 0xA5, sizeof(junk));
	CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	close(fd);
	st = open_ok(&c);
	if (st) {
		store_stats(st, &s);
		CHECK_EQ_INT(s.torn_dropped, 1);
		CHECK_EQ_INT(s.recovered, 6);
		struct store_handle n;
		CHECK_EQ_INT(put_jpeg(st, DEP, 80, 20000, &n), 0);
		store_close(&st);
		st = open_ok(&c);
		if (st) {
			CHECK_EQ_INT(check_jpeg(st, &n, 80, 20000), 0);
			store_close(&st);
		}
	}
	st_rm_rf(d);
}

/* Tampering that keeps the crc right (someone who knows the format, not the key) is caught by
 * the AEAD tag: the record is refused, never served altered. */
static void test_tamper(void)
{
	char d[256], k[300], seg[400];
	CHECK_EQ_INT(st_scratch(d, sizeof(d), k, sizeof(k), 0x24), 0);
	strcpy(key, k);
	struct store_conf c = conf_for(d);
	struct store *st = open_ok(&c);
	struct store_handle h[2];
	uint8_t rec[30000];

	if (!st)
		return;
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	CHECK_EQ_INT(put_jpeg(st, DEP, 1, 20000, &h[0]), 0);
	CHECK_EQ_INT(put_jpeg(st, DEP, 2, 20000, &h[1]), 0);
	store_close(&st);
	snprintf(seg, sizeof(seg), "%s/dep-%016x/seg-%08u", d, DEP, 0);
	int fd = open(seg, O_RDWR);
	CHECK(h[0].len <= sizeof(rec) && pread(fd, rec, h[0].len, (off_t)h[0].offset) == (ssize_t)h[0].len);
	rec[STORE_REC_HDR + 1000] ^= 0x40; /* one ciphertext bit */
	struct store_rec_hdr rh;
	CHECK_EQ_INT(store_rec_hdr_decode(rec, &rh), 0);
	store_rec_hdr_encode(rec, &rh, rec + STORE_REC_HDR); /* a crc that matches again */
	CHECK(store_rec_crc_ok(rec, rh.len));
	CHECK(pwrite(fd, rec, h[0].len, (off_t)h[0].offset) == (ssize_t)h[0].len);
	close(fd);
	st = open_ok(&c);
	if (st) {
		CHECK_EQ_INT(check_jpeg(st, &h[0], 1, 20000), -EBADMSG);
		CHECK_EQ_INT(check_jpeg(st, &h[1], 2, 20000), 0);
		store_close(&st);
	}
	st_rm_rf(d);
}

static void count_ack(void *arg, int rc, const struct store_handle *h)
{
	struct store_handle *out = arg;

	*out = *h; /* read by main() after the release below */
	(void)rc;
	__atomic_fetch_add(&n_async_acks, 1, __ATOMIC_RELEASE);
}

/* Where io_uring is refused the store writes the same groups with pwritev and fdatasync. */
static void test_no_uring(void)
{
	char d[256], k[300];
	static uint8_t bufs[8][21000];
	struct store_handle h[8];
	struct store_stats s;
	CHECK_EQ_INT(st_scratch(d, sizeof(d), k, sizeof(k), 0x25), 0);
	strcpy(key, k);
	struct store_conf c = conf_for(d);
	c.no_io_uring = true;
	c.group_max = 8;
	c.group_deadline_us = 50000; /* the 8 queued below go as one group: one pwritev of 8 */
	struct store *st = open_ok(&c);

	if (!st)
		return;
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	n_async_acks = 0;
	for (int i = 0; i < 8; i++) {
		struct store_alert a;
		struct store_crop cr = { .format = STORE_CROP_JPEG, .data = bufs[i], .len = 20000 + i };
		st_fake_jpeg(bufs[i], cr.len, 300 + i);
		st_alert(&a, DEP, 300 + i);
		CHECK_EQ_INT(store_put_async(st, &a, &cr, count_ack, &h[i]), 0);
	}
	for (int i = 0; i < 200 && __atomic_load_n(&n_async_acks, __ATOMIC_ACQUIRE) < 8; i++)
		usleep(10000);
	CHECK_EQ_INT(__atomic_load_n(&n_async_acks, __ATOMIC_ACQUIRE), 8);
	store_stats(st, &s);
	CHECK_EQ_INT(s.fallback_uring, 1);
	CHECK_EQ_INT(s.acked, 8);
	CHECK_EQ_INT(s.groups, 1);
	store_close(&st);
	c.no_io_uring = false;
	st = open_ok(&c);
	if (st) {
		for (int i = 0; i < 8; i++) {
			CHECK(h[i].saved);
			CHECK_EQ_INT(check_jpeg(st, &h[i], 300 + (uint64_t)i, 20000 + (size_t)i), 0);
		}
		store_close(&st);
	}
	st_rm_rf(d);
}

/* The store thread sweeps on its own, every sweep_interval_s, without anyone calling it. */
static void test_auto_sweep(void)
{
	char d[256], k[300];
	CHECK_EQ_INT(st_scratch(d, sizeof(d), k, sizeof(k), 0x23), 0);
	strcpy(key, k);
	struct store_conf c = conf_for(d);
	c.sweep_interval_s = 1;
	c.retain_unreviewed_s = 60;
	struct store *st = open_ok(&c);
	struct store_handle h;

	if (!st)
		return;
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	CHECK_EQ_INT(put_jpeg(st, DEP, 1, 20000, &h), 0);
	memset(&dels, 0, sizeof(dels));
	__atomic_fetch_add(&fake_now, 61ull * 1000000000ull, __ATOMIC_RELAXED);
	for (int i = 0; i < 40 && !__atomic_load_n(&dels.n_retention, __ATOMIC_ACQUIRE); i++)
		usleep(100000); /* up to 4 s: the sweep is due within 1 s */
	CHECK_EQ_INT(store_count(st), 0);
	CHECK_EQ_INT(dels.n_retention, 1);
	CHECK_EQ_INT(check_jpeg(st, &h, 1, 20000), -ENOENT);
	store_close(&st);
	st_rm_rf(d);
}

/* O_DIRECT on the test's own file system: 4 KiB-aligned records, recovered, and a buffered
 * reopen of the same segments goes on appending to them. */
static void test_o_direct(void)
{
	char d[256], k[300];
	CHECK_EQ_INT(st_scratch(d, sizeof(d), k, sizeof(k), 0x55), 0);
	strcpy(key, k);
	struct store_conf c = conf_for(d);
	c.o_direct = true;
	struct store *st = open_ok(&c);
	struct store_handle h[6];
	struct store_stats s;

	if (!st)
		return;
	CHECK_EQ_INT(store_deployment_open(st, DEP), 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(put_jpeg(st, DEP, i, 20001 + i, &h[i]), 0);
		store_stats(st, &s);
		if (!s.fallback_odirect)
			CHECK_EQ_INT(h[i].offset % 4096, 0);
	}
	store_close(&st);
	c.o_direct = false;
	st = open_ok(&c);
	if (!st)
		return;
	CHECK_EQ_INT(put_jpeg(st, DEP, 4, 20005, &h[4]), 0);
	store_close(&st);
	c.o_direct = true;
	st = open_ok(&c);
	if (!st)
		return;
	CHECK_EQ_INT(put_jpeg(st, DEP, 5, 20006, &h[5]), 0);
	store_stats(st, &s);
	CHECK_EQ_INT(s.recovered, 5);
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(check_jpeg(st, &h[i], i, 20001 + i), 0);
	store_close(&st);
	st_rm_rf(d);
}

int main(void)
{
	if (st_scratch(dir, sizeof(dir), key, sizeof(key), 0x5a) < 0) {
		perror("scratch");
		return 1;
	}
	test_rgb_roundtrip();
	test_reopen_and_at_rest();
	test_shred();
	test_retention();
	test_torn_and_flipped();
	test_o_direct();
	test_auto_sweep();
	test_tamper();
	test_no_uring();
	st_rm_rf(dir);
	return vg_test_exit();
}
