/* A secret key in a file of its own (vg_keyfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vg_keyfile.h"

/* A fresh random key at PATH, mode 0400, synced; 0 or -errno (-EIO: nothing left behind). */
static int key_file_create(const char *path, size_t len)
{
	uint8_t k[256];
	ssize_t r;
	int fd;

	if (len > sizeof(k))
		return -EINVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0)
		return -errno;
	randombytes_buf(k, len);
	r = write(fd, k, len);
	sodium_memzero(k, sizeof(k));
	if (r != (ssize_t)len || fsync(fd) < 0) {
		close(fd);
		unlink(path);
		return -EIO;
	}
	close(fd);
	return 0;
}

int vg_key_file_read(const char *path, uint8_t *key, size_t len, bool create)
{
	uint8_t buf[256];
	struct stat sb;
	ssize_t r;
	int fd, rc;

	if (!path || !key || len == 0 || len > sizeof(buf))
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create) {
		rc = key_file_create(path, len);
		if (rc < 0)
			return rc;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & 077) || sb.st_uid != geteuid()) {
		close(fd);
		return -EPERM;
	}
	r = read(fd, buf, len);
	close(fd);
	rc = r == (ssize_t)len ? 0 : -EINVAL;
	if (rc == 0)
		memcpy(key, buf, len);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}
