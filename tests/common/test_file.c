/* common/vg_file: whole files read, and what a reader of outside files must refuse. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vg_test.h"
#include "vg_file.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

int main(void)
{
	char dir[256], path[320], fifo[320];
	uint8_t *buf = (uint8_t *)"untouched";
	size_t len = 12345;

	if (!vg_test_tmpdir("file", dir, sizeof(dir)))
		return 1;
	snprintf(path, sizeof(path), "%s/a.conf", dir);
	write_file(path, "hello\n");

	/* The whole file, NUL-terminated so that text parses in place. */
	CHECK_EQ_INT(vg_file_read(path, 64, &buf, &len), 0);
	CHECK_EQ_INT(len, 6);
	CHECK(memcmp(buf, "hello\n", 7) == 0);
	free(buf);

	/* At the cap it reads; one byte over it is refused before reading, outputs untouched. */
	CHECK_EQ_INT(vg_file_read(path, 6, &buf, &len), 0);
	free(buf);
	buf = (uint8_t *)"untouched";
	len = 12345;
	CHECK_EQ_INT(vg_file_read(path, 5, &buf, &len), -EFBIG);
	CHECK(strcmp((char *)buf, "untouched") == 0);
	CHECK_EQ_INT(len, 12345);

	/* An empty file is an empty buffer, not an error. */
	write_file(path, "");
	CHECK_EQ_INT(vg_file_read(path, 64, &buf, &len), 0);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(buf[0], 0);
	free(buf);

	/* A FIFO with no writer would block a naive reader forever: refused at once. */
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CHECK_EQ_INT(mkfifo(fifo, 0600), 0);
	CHECK_EQ_INT(vg_file_read(fifo, 64, &buf, &len), -EINVAL);
	CHECK_EQ_INT(vg_file_read(dir, 64, &buf, &len), -EINVAL);
	CHECK_EQ_INT(vg_file_read("/dev/null", 64, &buf, &len), -EINVAL);
	CHECK_EQ_INT(vg_file_read("/nonexistent/vigil", 64, &buf, &len), -ENOENT);

	/* By descriptor: from offset 0 whatever the descriptor's offset, which is left alone. */
	write_file(path, "0123456789");
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ_INT(lseek(fd, 4, SEEK_SET), 4);
	CHECK_EQ_INT(vg_file_read_fd(fd, 64, &buf, &len), 0);
	CHECK_EQ_INT(len, 10);
	CHECK(memcmp(buf, "0123456789", 10) == 0);
	CHECK_EQ_INT(lseek(fd, 0, SEEK_CUR), 4);
	free(buf);
	close(fd);

	unlink(fifo);
	unlink(path);
	rmdir(dir);
	return vg_test_exit();
}
