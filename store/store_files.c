/*
 * Paths and files of the evidence store: where a deployment's files are, synced writes through an
 * aligned bounce buffer, and the making of segment files (store_int.h says who calls what).
 *
 * Layout under conf->dir:   dep-<id hex>/key       the deployment's data key, sealed
 *                           dep-<id hex>/meta      journal of outcomes and tombstones
 *                           dep-<id hex>/seg-<n>   evidence segments, append-only
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h"

/* ---- paths and files ------------------------------------------------------------------------- */
void store_dep_path(const struct store *st, uint64_t dep, const char *leaf, char *out, size_t n)
{
	snprintf(out, n, "%s/dep-%016" PRIx64 "%s%s", st->dir, dep, leaf ? "/" : "", leaf ? leaf : "");
}

void store_seg_path(const struct store *st, uint64_t dep, uint32_t seg, char *out, size_t n)
{
	char leaf[32];

	snprintf(leaf, sizeof(leaf), "seg-%08" PRIu32, seg);
	store_dep_path(st, dep, leaf, out, n);
}

int store_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Write N bytes at OFF (DATA_LEN of DATA, then zeros) through an aligned bounce buffer (O_DIRECT needs one), then fdatasync. */
int store_write_sync_pad(int fd, const void *data, size_t data_len, size_t n, uint64_t off)
{
	void *b;
	ssize_t w;
	int rc = 0;

	if (posix_memalign(&b, 4096, store_align_up(n, 4096)))
		return -ENOMEM;
	memset(b, 0, store_align_up(n, 4096));
	memcpy(b, data, n < data_len ? n : data_len);
	w = pwrite(fd, b, n, (off_t)off);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != n)
		rc = -ENOSPC;
	else if (fdatasync(fd) < 0)
		rc = -errno;
	free(b);
	return rc;
}

int store_write_sync(int fd, const void *data, size_t n, uint64_t off)
{
	return store_write_sync_pad(fd, data, n, n, off);
}

int store_seg_open_fd(struct store *st, const char *path, int flags)
{
	int fd;

	if (st->o_direct) {
		fd = open(path, flags | O_DIRECT | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EINVAL)
			return fd < 0 ? -errno : fd;
		/* This file system refuses O_DIRECT (tmpfs): buffered from now on, counted. */
		st->o_direct = false;
		count(st, ROW_THREAD, STORE_fallback_odirect, 1);
	}
	fd = open(path, flags | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* Make segment SEG of D (or its meta journal) with its header, durable with its directory entry. */
int store_seg_create(struct store *st, struct store_dep *d, uint32_t seg, bool meta, int *fd_out, uint64_t *end)
{
	char path[4096], dir[4096];
	uint8_t hdr[STORE_SEG_HDR];
	struct store_seg_hdr sh = { .kind = meta ? STORE_SEG_META : STORE_SEG_EVIDENCE, .deployment = d->id,
				    .segment = seg, .created_ns = store_now(st) };
	uint32_t align = meta ? 8 : st->align;
	int fd, rc;

	if (meta)
		store_dep_path(st, d->id, "meta", path, sizeof(path));
	else
		store_seg_path(st, d->id, seg, path, sizeof(path));
	store_dep_path(st, d->id, NULL, dir, sizeof(dir));
	fd = meta ? open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
		  : store_seg_open_fd(st, path, O_RDWR | O_CREAT | O_EXCL);
	if (fd < 0)
		return meta ? -errno : fd;
	if (!meta && !st->o_direct)
		align = 8;
	sh.align_log2 = align == 4096 ? 12 : 3;
	store_seg_hdr_encode(hdr, &sh);
	/* one write of the header padded to the alignment, so O_DIRECT writes start aligned */
	rc = store_write_sync_pad(fd, hdr, sizeof(hdr), align > sizeof(hdr) ? align : sizeof(hdr), 0);
	if (rc == 0)
		rc = store_fsync_dir(dir);
	if (rc < 0) {
		close(fd);
		unlink(path);
		return rc;
	}
	*fd_out = fd;
	*end = store_align_up(STORE_SEG_HDR, align);
	return 0;
}

void store_dep_close_files(struct store *st, unsigned di)
{
	struct store_dep *d = &st->deps[di];

	if (d->seg_fd >= 0) {
		store_ring_file_set(st, di, -1);
		close(d->seg_fd);
	}
	if (d->meta_fd >= 0)
		close(d->meta_fd);
	d->seg_fd = d->meta_fd = -1;
}
