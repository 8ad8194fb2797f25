/*
 * Memory for face pixels and everything computed from them (net inputs, activations): mapped
 * apart from the heap, MADV_DONTDUMP so that no core dump holds a face (DESIGN.md invariant 1),
 * and zeroed before it is unmapped. Sized once when a model opens; never on the inference path.
 * (common's vg_pool gives the same guarantees for pools of equal buffers; the nets need one
 * buffer each of many sizes.)
 */
#include <string.h>
#include <sys/mman.h>

#include "gpu_int.h"
#include "vg_pool.h"

#define BIO_HDR 64   /* keeps the payload cache-line aligned; holds the mapping length */

void *gpu_bio_alloc(size_t size)
{
	size_t len = size + BIO_HDR;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_DONTDUMP);   /* best effort: a kernel without it still works */
	memcpy(p, &len, sizeof(len));
	return p + BIO_HDR;
}

void gpu_bio_free(void *payload)
{
	unsigned char *p;
	size_t len;

	if (!payload)
		return;
	p = (unsigned char *)payload - BIO_HDR;
	memcpy(&len, p, sizeof(len));
	vg_scrub(p, len);
	munmap(p, len);
}
