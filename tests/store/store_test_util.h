/* Helpers the store's tests share: a scratch directory with an appliance key, crops, alerts. */
#ifndef STORE_TEST_UTIL_H
#define STORE_TEST_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "vg_test.h"

static int st_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void st_rm_rf(const char *dir)
{
	nftw(dir, st_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A scratch directory from vg_test_tmpdir(); writes a 32-byte appliance key, mode 0400, into KEY. */
static inline int st_scratch(char *dir, size_t n, char *key, size_t kn, uint8_t fill)
{
	uint8_t k[32];
	int fd;

	if (!vg_test_tmpdir("store", dir, n))
		return -1;
	snprintf(key, kn, "%s/appliance.key", dir);
	memset(k, fill, sizeof(k));
	fd = open(key, O_WRONLY | O_CREAT | O_TRUNC, 0400);
	if (fd < 0 || write(fd, k, sizeof(k)) != (ssize_t)sizeof(k))
		return -1;
	close(fd);
	return 0;
}

static inline uint64_t st_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A deterministic pseudo-JPEG of LEN bytes for record I: starts with SOI, like a real one. */
static inline void st_fake_jpeg(uint8_t *buf, size_t len, uint64_t i)
{
	uint64_t s = i * 0x9E3779B97F4A7C15ull + 1;

	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)st_rng(&s);
	buf[0] = 0xFF;
	buf[1] = 0xD8;
	buf[2] = 0xFF;
	buf[3] = 0xE0;
	buf[len - 2] = 0xFF;
	buf[len - 1] = 0xD9;
}

static inline void st_alert(struct store_alert *a, uint64_t dep, uint64_t i)
{
	memset(a, 0, sizeof(*a));
	a->deployment = dep;
	a->time_ns = 1700000000000000000ull + i;
	a->track = i;
	a->pts = (int64_t)i * 3600;
	snprintf(a->camera, sizeof(a->camera), "cam%u", (unsigned)(i % 7));
	snprintf(a->subject, sizeof(a->subject), "SUBJECT-SECRET-%06u", (unsigned)i);
	snprintf(a->watchlist, sizeof(a->watchlist), "wl-2026-11");
	snprintf(a->metric, sizeof(a->metric), "l2");
	snprintf(a->model, sizeof(a->model), "face-api-1.7.15");
	a->value = 0.42f;
	a->threshold = 0.6f;
	a->box[0] = 10;
	a->box[1] = 20;
	a->box[2] = 30;
	a->box[3] = 40;
	a->quality[0] = 0.97f;
}

/* Whether any file under DIR contains NEEDLE[N] (the at-rest check). */
static inline int st_dir_contains(const char *dir, const void *needle, size_t n);

struct st_search {
	const void *needle;
	size_t n;
	int found;
};
static struct st_search st_search_ctx;

static int st_search_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	FILE *f;
	uint8_t *buf;

	(void)ftw;
	if (flag != FTW_F || !S_ISREG(sb->st_mode) || strstr(p, "appliance.key"))
		return 0;
	f = fopen(p, "rb");
	if (!f)
		return 0;
	buf = malloc((size_t)sb->st_size + 1);
	if (buf && fread(buf, 1, (size_t)sb->st_size, f) == (size_t)sb->st_size &&
	    memmem(buf, (size_t)sb->st_size, st_search_ctx.needle, st_search_ctx.n))
		st_search_ctx.found = 1;
	free(buf);
	fclose(f);
	return 0;
}

static inline int st_dir_contains(const char *dir, const void *needle, size_t n)
{
	st_search_ctx = (struct st_search){ needle, n, 0 };
	nftw(dir, st_search_cb, 16, FTW_PHYS);
	return st_search_ctx.found;
}

#endif
