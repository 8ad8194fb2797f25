/*
 * Private to store/: the on-disk format and the parser recovery uses (and the fuzz target feeds).
 *
 * A segment file:   [segment header, padded to ALIGN] [record, padded to ALIGN] ...
 * A record:         [header, 72 bytes] [payload: LEN bytes]
 * Every integer is little-endian. ALIGN is 8, or 4096 for O_DIRECT segments; padding is zeros.
 *
 * Record header (72 bytes):
 *   0 magic 'VGR1'   4 version u16   6 type u8   7 cipher u8   8 len u32   12 hcrc u32
 *  16 seq u64       24 deployment u64   32 time_ns u64 (store clock at put, for retention)
 *  40 nonce[24]     64 crc u32   68 reserved u32 (zero)
 * hcrc = crc32c of the 72 header bytes with hcrc and crc zeroed: a header that passes it gives a
 * length the scanner can trust and skip over even when the payload is damaged.
 * crc = crc32c of the header (hcrc filled, crc zeroed) then the payload: torn or flipped bytes
 * anywhere in the record fail it, without the key.
 *
 * Segment header (64 bytes): 0 magic 'VGS1'  4 version u16  6 align_log2 u8  7 kind u8
 *   8 deployment u64  16 segment u32  20 reserved u32  24 created_ns u64  32..60 zero  60 crc u32
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_REC_MAGIC 0x31524756u /* "VGR1" */
#define STORE_SEG_MAGIC 0x31534756u /* "VGS1" */
#define STORE_VERSION 1
#define STORE_REC_HDR 72
#define STORE_SEG_HDR 64
#define STORE_NONCE 24
#define STORE_REC_MAX_LEN (16u << 20) /* no record is larger; a bigger length is damage */

enum store_rec_type {
	STORE_REC_EVIDENCE = 1, /* alert + JPEG, sealed */
	STORE_REC_OUTCOME = 2,  /* meta journal: seq, outcome */
	STORE_REC_DELETE = 3,   /* meta journal: seq, reason (a tombstone) */
};

enum store_cipher {
	STORE_CIPHER_NONE = 0, /* meta journal records: no biometric content */
	STORE_CIPHER_AES256GCM = 1,
	STORE_CIPHER_XCHACHA20POLY1305 = 2,
};

enum store_seg_kind { STORE_SEG_EVIDENCE = 1, STORE_SEG_META = 2 };

struct store_rec_hdr {
	uint16_t version;
	uint8_t type, cipher;
	uint32_t len;
	uint64_t seq, deployment, time_ns;
	uint8_t nonce[STORE_NONCE];
};

struct store_seg_hdr {
	uint8_t align_log2, kind;
	uint64_t deployment;
	uint32_t segment;
	uint64_t created_ns;
};

uint32_t store_crc32c(uint32_t crc, const void *buf, size_t len);

/* Encode H (with LEN already the payload length) into OUT[72]; fills hcrc, and crc over PAYLOAD. */
void store_rec_hdr_encode(uint8_t *out, const struct store_rec_hdr *h, const uint8_t *payload);
/* Check and decode a header: 0, or -EBADMSG (magic, version, hcrc, length bound). */
int store_rec_hdr_decode(const uint8_t *in, struct store_rec_hdr *h /* OUT */);
/* Whether the crc over IN's header and its LEN payload bytes holds. */
bool store_rec_crc_ok(const uint8_t *rec, uint32_t len);

void store_seg_hdr_encode(uint8_t *out, const struct store_seg_hdr *h);
int store_seg_hdr_decode(const uint8_t *in, size_t len, struct store_seg_hdr *h /* OUT */);

static inline uint64_t store_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* What the scanner found, per record. */
enum store_scan_status { STORE_SCAN_OK, STORE_SCAN_CORRUPT };
typedef void store_scan_fn(void *arg, enum store_scan_status st, uint64_t off, const struct store_rec_hdr *h,
			   const uint8_t *payload);

struct store_scan_result {
	uint64_t valid_end;      /* just past the last record with a sound header: the append point */
	uint32_t n_ok, n_corrupt; /* sound records; records with a sound header whose crc fails */
	uint64_t resynced_bytes; /* bytes skipped between a damaged header and the next sound one */
	uint64_t torn_bytes;     /* bytes after valid_end (a torn tail, or garbage) */
};

/*
 * Scan a whole segment image BUF[LEN] (header included). Calls FN for every record with a
 * sound header, in order. Never reads outside BUF. Returns 0, or -EBADMSG if the segment header
 * is damaged (nothing in it can be trusted).
 * Cost: one crc pass over the bytes, plus for each damaged header a forward search in ALIGN steps.
 */
int store_seg_scan(const uint8_t *buf, size_t len, store_scan_fn *fn, void *arg, struct store_seg_hdr *seg /* OUT */,
		   struct store_scan_result *res /* OUT */);

/* The plaintext of an evidence record: the alert, then the JPEG. */
#define STORE_ALERT_BYTES 296
struct store_alert;
void store_alert_encode(uint8_t *out, const struct store_alert *a);
void store_alert_decode(const uint8_t *in, struct store_alert *a /* OUT */);



/* Limits of the implementation, not of the format. */
#define STORE_MAX_DEPLOYMENTS 64 /* deployments open at once (an appliance runs one or two) */
#define STORE_KEY_BYTES 32
#define STORE_TAG_BYTES 16
#endif /* STORE_INT_H */
