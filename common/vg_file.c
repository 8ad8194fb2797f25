/* Whole files: reading with the refusals every reader of outside files needs, and scrubbing (vg_file.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vg_file.h"

int vg_file_read_fd(int fd, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t have = 0, size;
	ssize_t got;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size < 0 || (uint64_t)st.st_size > max)
		return -EFBIG;
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	while (have < size) {
		got = pread(fd, buf + have, size - have, (off_t)have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	/* One byte more than fstat said means it grew: a reader must not parse half a rewrite. */
	if (have != size || pread(fd, &(uint8_t){ 0 }, 1, (off_t)size) > 0) {
		free(buf);
		return -EIO;
	}
	buf[size] = 0;
	*out = buf;
	*len = size;
	return 0;
}

int vg_file_read(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int fd, rc;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer; the regular-file check refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	rc = vg_file_read_fd(fd, max, out, len);
	close(fd);
	return rc;
}

/*
 * Overwrite PATH's bytes with zeros, sync, then unlink it: what remove and purge mean by "deleted
 * from disk". On a copy-on-write or flash-remapped file system the old blocks may survive the
 * overwrite; the enrolment crops are encrypted for that reason. A missing file is already gone.
 */
int vg_file_scrub(const char *path)
{
	static const uint8_t zeros[65536];
	struct stat sb;
	off_t done = 0;
	int fd, rc = 0;

	/* O_NONBLOCK: a FIFO planted at PATH must not hold the caller; it is refused below. */
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : errno == ENXIO ? -EINVAL : -errno;
	if (fstat(fd, &sb) < 0)
		rc = -errno;
	else if (!S_ISREG(sb.st_mode))
		rc = -EINVAL;
	while (rc == 0 && done < sb.st_size) {
		size_t n = (size_t)(sb.st_size - done) < sizeof(zeros) ? (size_t)(sb.st_size - done) : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = w < 0 ? -errno : -EIO;
		else
			done += w;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && unlink(path) < 0 && errno != ENOENT)
		rc = -errno;
	return rc;
}
