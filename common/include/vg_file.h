/**
 * @file vg_file.h
 * Reading a whole file from outside (a config, an image, a model's weights, a watchlist, a key
 * blob) in one place, so that every reader refuses the same things the same way: FIFOs, devices
 * and other non-regular files are refused at once (never waited on: the open does not block),
 * files over the caller's cap are refused before a byte is read, and a file that shrinks under
 * the reader is an error rather than a short buffer.
 *
 * Any thread; no state. The buffer is malloc'd and the caller's: for a biometric file (a face
 * photo, a watchlist) the caller scrubs it before free (vg_scrub(), vg_pool.h).
 */
#ifndef VG_FILE_H
#define VG_FILE_H

#include <stddef.h>
#include <stdint.h>

/**
 * Read the regular file at PATH, at most MAX bytes, into *OUT (malloc'd, with a NUL after the
 * LEN bytes so that text can be parsed in place); its length in *LEN. Returns 0, or: open's
 * -errno (-ENOENT, -EACCES, ...); -EINVAL when PATH is not a regular file; -EFBIG when it holds
 * more than MAX bytes; -ENOMEM; -EIO when it changed size while being read. *OUT and *LEN are
 * untouched on error.
 */
int vg_file_read(const char *path, size_t max, uint8_t **out /* OUT */, size_t *len /* OUT */);

/** vg_file_read() of the file open at FD, from offset 0 (pread: FD's offset is left alone). */
int vg_file_read_fd(int fd, size_t max, uint8_t **out /* OUT */, size_t *len /* OUT */);

/**
 * Overwrite the regular file at PATH with zeros, sync, then unlink it: what deleting a watchlist
 * or an operator's copy of one means. 0 (also when PATH is already gone), -EINVAL for a file that
 * is not regular (never waited on), or -errno. On a copy-on-write or flash-remapped file system
 * old blocks may survive the overwrite: what must not survive is encrypted as well.
 */
int vg_file_scrub(const char *path);

#endif /* VG_FILE_H */
