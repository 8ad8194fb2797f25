/*
 * Keys of the evidence store: each deployment's data key, kept sealed by the appliance key; the
 * AEAD seal of every evidence record under it; and crypto-shredding, which destroys a deployment's
 * key before its files so that nothing of it is readable once the key is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h"
#include "vg_keyfile.h"
#include "vg_log.h"

/* ---- keys ------------------------------------------------------------------------------------ */
static const char dk_ad_prefix[] = "vigil deployment key v1";

static void dk_ad(uint8_t ad[sizeof(dk_ad_prefix) + 8], uint64_t dep)
{
	memcpy(ad, dk_ad_prefix, sizeof(dk_ad_prefix));
	for (int i = 0; i < 8; i++)
		ad[sizeof(dk_ad_prefix) + i] = (uint8_t)(dep >> (8 * i));
}

/* Load D's data key from its sealed file, or make and seal one if CREATE and there is none. */
int store_dep_key_load(struct store *st, struct store_dep *d, bool create)
{
	uint8_t sealed[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + STORE_KEY_BYTES +
		       crypto_aead_xchacha20poly1305_ietf_ABYTES];
	uint8_t ad[sizeof(dk_ad_prefix) + 8];
	char path[4096], dir[4096];
	unsigned long long n;
	uint8_t *npub = sealed;
	int fd, rc;

	dk_ad(ad, d->id);
	store_dep_path(st, d->id, "key", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = read(fd, sealed, sizeof(sealed));
		close(fd);
		if (r != (ssize_t)sizeof(sealed))
			return -EBADMSG;
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(d->key, &n, NULL, npub + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
							       STORE_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES,
							       ad, sizeof(ad), npub, st->appliance_key) < 0)
			return -EKEYREJECTED;
		return 0;
	}
	if (errno != ENOENT || !create)
		return -errno;
	randombytes_buf(d->key, sizeof(d->key));
	randombytes_buf(npub, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(npub + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &n, d->key,
						   STORE_KEY_BYTES, ad, sizeof(ad), NULL, npub, st->appliance_key);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0)
		return -errno;
	rc = store_write_sync(fd, sealed, sizeof(sealed), 0);
	close(fd);
	store_dep_path(st, d->id, NULL, dir, sizeof(dir));
	if (rc == 0)
		rc = store_fsync_dir(dir);
	if (rc < 0)
		unlink(path);
	return rc;
}

int store_appliance_key_load(struct store *st, char *err, size_t errlen)
{
	const char *path = st->conf.appliance_key_path;
	int rc;

	if (!path)
		return vg_errf(err, errlen, -EINVAL, "store: no appliance key file configured");
	rc = vg_key_file_read(path, st->appliance_key, sizeof(st->appliance_key), st->conf.create_appliance_key);
	if (rc == -EPERM)
		return vg_errf(err, errlen, rc, "store: appliance key %s must be a regular file of uid %u, mode 0400 or 0600",
			       path, (unsigned)geteuid());
	if (rc == -EINVAL)
		return vg_errf(err, errlen, rc, "store: appliance key %s must hold %d bytes", path, STORE_KEY_BYTES);
	if (rc == -EIO)
		return vg_errf(err, errlen, rc, "store: cannot write appliance key %s", path);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "store: cannot open appliance key %s: %s", path, vg_strerror(rc));
	return 0;
}

/* ---- records' seal ---------------------------------------------------------------------------- */
static void rec_ad(uint8_t ad[32], const struct store_rec_hdr *h)
{
	uint64_t v[4] = { h->seq, h->deployment, h->time_ns,
			  (uint64_t)h->version | (uint64_t)h->type << 16 | (uint64_t)h->cipher << 24 };

	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 8; b++)
			ad[8 * i + b] = (uint8_t)(v[i] >> (8 * b));
}

/* Seal M[MLEN] in place (room for the tag after it). */
void store_rec_seal(const struct store_dep *d, const struct store_rec_hdr *h, uint8_t *m, size_t mlen)
{
	uint8_t ad[32];
	unsigned long long clen;

	rec_ad(ad, h);
	if (h->cipher == STORE_CIPHER_AES256GCM)
		crypto_aead_aes256gcm_encrypt_afternm(m, &clen, m, mlen, ad, sizeof(ad), NULL, h->nonce, &d->gcm);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt(m, &clen, m, mlen, ad, sizeof(ad), NULL, h->nonce, d->key);
}

int store_rec_open(const struct store_dep *d, const struct store_rec_hdr *h, uint8_t *c, size_t clen)
{
	uint8_t ad[32];
	unsigned long long mlen;
	int rc;

	rec_ad(ad, h);
	if (h->cipher == STORE_CIPHER_AES256GCM) {
		if (!crypto_aead_aes256gcm_is_available())
			return -ENOTSUP;
		rc = crypto_aead_aes256gcm_decrypt_afternm(c, &mlen, NULL, c, clen, ad, sizeof(ad), h->nonce, &d->gcm);
	} else if (h->cipher == STORE_CIPHER_XCHACHA20POLY1305) {
		rc = crypto_aead_xchacha20poly1305_ietf_decrypt(c, &mlen, NULL, c, clen, ad, sizeof(ad), h->nonce, d->key);
	} else {
		return -EBADMSG;
	}
	return rc < 0 ? -EBADMSG : 0;
}

/* ---- shredding ------------------------------------------------------------------------------- */
void store_rm_tree_files(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char path[4096];

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(dp);
	rmdir(dir);
}

/* Store thread: destroy the key first (after that nothing of it is readable), then the files. */
int store_dep_shred(struct store *st, uint64_t id)
{
	struct store_handle *gone = NULL;
	enum store_outcome *outc = NULL;
	size_t n_gone = 0;
	char path[4096], dir[4096];
	unsigned di;
	int rc;

	for (di = 0; di < st->n_deps; di++)
		if (st->deps[di].id == id)
			break;
	if (di == st->n_deps)
		return -ENOENT;
	store_dep_path(st, id, "key", path, sizeof(path));
	store_dep_path(st, id, NULL, dir, sizeof(dir));
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	rc = store_fsync_dir(dir);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&st->mu);
	st->deps[di].live = false;
	sodium_memzero(st->deps[di].key, sizeof(st->deps[di].key));
	sodium_memzero(&st->deps[di].gcm, sizeof(st->deps[di].gcm));
	gone = malloc((st->n_idx + 1) * sizeof(*gone));
	outc = malloc((st->n_idx + 1) * sizeof(*outc));
	for (size_t i = 0; gone && outc && i < st->n_idx; i++) {
		struct store_ent *e = &st->idx[i];
		if (e->dep != di || e->deleted)
			continue;
		e->deleted = 1;
		if (e->corrupt)
			continue;
		store_ent_handle(st, e, &gone[n_gone]);
		gone[n_gone].deployment = id;
		outc[n_gone++] = e->outcome;
	}
	count(st, ROW_LOCKED, STORE_deleted, n_gone);
	pthread_mutex_unlock(&st->mu);
	pthread_mutex_lock(&st->meta_mu);
	store_dep_close_files(st, di);
	pthread_mutex_unlock(&st->meta_mu);
	store_rm_tree_files(dir);
	store_fsync_dir(st->dir);
	for (size_t i = 0; i < n_gone; i++)
		if (st->conf.on_delete)
			st->conf.on_delete(st->conf.on_delete_arg, &gone[i], outc[i], STORE_DELETE_SHRED);
	free(gone);
	free(outc);
	return gone || !n_gone ? 0 : -ENOMEM;
}
