/**
 * @file vg_keyfile.h
 * A secret key kept in a file of its own: LEN raw bytes in a regular file owned by this uid and
 * readable by no one else (mode 0400, or 0600). The evidence store's appliance key is one, and
 * mgmt reads the same file to seal the enrolment crops, so both go through here.
 */
#ifndef VG_KEYFILE_H
#define VG_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Read the key at PATH into KEY (LEN bytes). With CREATE, a missing file is made first (random
 * bytes, mode 0400, synced; first boot). Returns 0; -errno of open (-ENOENT: missing, and not
 * CREATE); -EIO when a new key could not be written (the half-made file is removed); -EPERM when
 * the file is not a regular file of this uid or others may read it; -EINVAL when it holds fewer
 * than LEN bytes. KEY is untouched on error.
 */
int vg_key_file_read(const char *path, uint8_t *key, size_t len, bool create);

#endif /* VG_KEYFILE_H */
