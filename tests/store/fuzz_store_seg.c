/*
 * Fuzz target: the segment scanner recovery runs over whatever is on disk after a crash, a bad
 * disk or tampering (store_seg_scan()). It must never read outside the buffer, must report an
 * append point inside it, and must hand only records that pass their crc to the index.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../store/store_int.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	const uint8_t *base;
	size_t size;
	uint64_t last_end;
};

static void on_rec(void *arg, enum store_scan_status st, uint64_t off, const struct store_rec_hdr *h,
		   const uint8_t *payload)
{
	struct fz *f = arg;

	/* every record lies inside the buffer, in order, and OK ones pass their crc */
	if (off < f->last_end || off + STORE_REC_HDR + h->len > f->size ||
	    payload != f->base + off + STORE_REC_HDR)
		__builtin_trap();
	if (st == STORE_SCAN_OK && !store_rec_crc_ok(f->base + off, h->len))
		__builtin_trap();
	if (st == STORE_SCAN_OK && h->type == STORE_REC_EVIDENCE && h->len >= STORE_ALERT_BYTES) {
		struct store_alert a; /* what get() decodes after opening: must not overrun */
		store_alert_decode(payload, &a);
		if (strlen(a.subject) >= sizeof(a.subject))
			__builtin_trap();
	}
	f->last_end = off + STORE_REC_HDR + h->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_seg_hdr sh;
	struct store_scan_result res;
	struct fz f = { data, size, 0 };
	struct store_rec_hdr h;

	if (size >= STORE_REC_HDR)
		(void)store_rec_hdr_decode(data, &h);
	if (store_seg_scan(data, size, on_rec, &f, &sh, &res) == 0) {
		if (res.valid_end > size || res.torn_bytes != size - res.valid_end)
			__builtin_trap();
		if (res.resynced_bytes > size)
			__builtin_trap();
	}
	return 0;
}
