/**
 * @file vg_counter.h
 * Per-stage counters, declared once as an X-macro list (FD.io VPP's node error counters are the
 * model), kept per thread without atomics' lock prefix, summed when read, and exported by mgmt.
 *
 * A stage lists its counters once (X takes the enum prefix P, the name and the help):
 *
 *     #define DP_RX_COUNTERS(X, P)                              \
 *         X(P, packets,   "RTP packets received")               \
 *         X(P, malformed, "packets dropped as malformed")
 *     VG_COUNTERS_DECLARE(dp_rx, DP_RX, DP_RX_COUNTERS)
 *
 * which gives `enum dp_rx_counter { DP_RX_packets, DP_RX_malformed, DP_RX__COUNT }` and the
 * descriptions `dp_rx_counter_desc[]`. At start-up the stage makes a block with one row per
 * thread; each thread takes its row once and bumps it on the fast path:
 *
 *     vg_counter_block_create(&blk, "dp_rx", dp_rx_counter_desc, DP_RX__COUNT, n_lcores);
 *     struct vg_counter_row *row = vg_counter_block_row(blk, lcore_index);
 *     vg_counter_add(row, DP_RX_malformed, 1);      // one load and one store, no lock
 *
 * A row has exactly one writer thread; readers on any thread see each value torn-free.
 */
#ifndef VG_COUNTER_H
#define VG_COUNTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vg_base.h"

struct vg_counter_desc {
	const char *name; /* [a-z0-9_]+, unique within the block */
	const char *help; /* one line, for people */
};

#define VG_COUNTER_ENUM_(P, name, help) P##_##name,
#define VG_COUNTER_DESC_(P, name, help) { #name, help },
#define VG_COUNTERS_DECLARE(stage, PREFIX, LIST)                          \
	enum stage##_counter { LIST(VG_COUNTER_ENUM_, PREFIX) PREFIX##__COUNT }; \
	static const struct vg_counter_desc stage##_counter_desc[] VG_MAYBE_UNUSED = { LIST(VG_COUNTER_DESC_, PREFIX) };

/** One thread's counters: values[idx]. Opaque beyond this. */
struct vg_counter_row {
	_Atomic uint64_t values[1]; /* really [n], cache-line aligned */
};

/** Add V to counter IDX of ROW. Only ROW's owning thread may call this. */
static inline void vg_counter_add(struct vg_counter_row *row, unsigned idx, uint64_t v)
{
	/* Single writer: a relaxed load and store compile to plain moves, no locked RMW. */
	uint64_t cur = atomic_load_explicit(&row->values[idx], memory_order_relaxed);

	atomic_store_explicit(&row->values[idx], cur + v, memory_order_relaxed);
}

struct vg_counter_block;

/**
 * Make a block of N counters for N_ROWS writer threads and register it for export.
 * DESC must outlive the block. Returns 0 or -ENOMEM/-EINVAL; *OUT untouched on error.
 */
int vg_counter_block_create(struct vg_counter_block **out, const char *stage, const struct vg_counter_desc *desc,
			    unsigned n, unsigned n_rows);
/** Unregister and free the block; sets *BLK to NULL. No thread may still hold a row. */
void vg_counter_block_destroy(struct vg_counter_block **blk);

/** The row of writer thread I (0 <= I < n_rows). */
struct vg_counter_row *vg_counter_block_row(struct vg_counter_block *blk, unsigned i);

/** Sum every row into OUT[0..n). Any thread, at any time. */
void vg_counter_block_read(const struct vg_counter_block *blk, uint64_t *out);

/** Stage name, number of counters, and descriptions. */
const char *vg_counter_block_stage(const struct vg_counter_block *blk);
unsigned vg_counter_block_size(const struct vg_counter_block *blk);
const struct vg_counter_desc *vg_counter_block_desc(const struct vg_counter_block *blk);

/**
 * Every registered block in the Prometheus text format (`vigil_<stage>_<name>` counters with
 * their HELP and TYPE lines), into BUF. Returns the length written, or -ENOSPC if LEN is short.
 */
int vg_counters_format_prometheus(char *buf, size_t len);

#endif /* VG_COUNTER_H */
