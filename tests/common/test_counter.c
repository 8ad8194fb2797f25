/*
 * common/vg_counter: X-macro declaration, per-thread rows summed on read (with real threads
 * writing at once), and the Prometheus export.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "vg_test.h"
#include "vg_counter.h"

#define TEST_RX_COUNTERS(X, P)                     \
	X(P, packets, "RTP packets received")      \
	X(P, malformed, "packets dropped as malformed") \
	X(P, late, "packets that came after their frame left")
VG_COUNTERS_DECLARE(test_rx, TEST_RX, TEST_RX_COUNTERS)

#define THREADS 4
#define PER_THREAD 200000

struct worker {
	struct vg_counter_row *row;
	unsigned id;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (unsigned i = 0; i < PER_THREAD; i++) {
		vg_counter_add(w->row, TEST_RX_packets, 1);
		if (i % 10 == w->id)
			vg_counter_add(w->row, TEST_RX_malformed, 2);
	}
	return NULL;
}

int main(void)
{
	struct vg_counter_block *blk = NULL;
	struct worker workers[THREADS];
	pthread_t threads[THREADS];
	uint64_t values[TEST_RX__COUNT];
	char text[4096];

	CHECK_EQ_INT(TEST_RX__COUNT, 3);
	CHECK_EQ_INT(TEST_RX_late, 2);
	CHECK(strcmp(test_rx_counter_desc[1].name, "malformed") == 0);

	CHECK_EQ_INT(vg_counter_block_create(&blk, "test_rx", test_rx_counter_desc, 0, THREADS), -EINVAL);
	CHECK_EQ_INT(vg_counter_block_create(&blk, "test_rx", test_rx_counter_desc, TEST_RX__COUNT, THREADS), 0);
	if (!blk)
		return 1;
	CHECK(vg_counter_block_row(blk, 0) != vg_counter_block_row(blk, 1));
	/* Rows never share a cache line: no false sharing between writer threads. */
	CHECK((char *)vg_counter_block_row(blk, 1) - (char *)vg_counter_block_row(blk, 0) >= 64);

	for (unsigned i = 0; i < THREADS; i++) {
		workers[i] = (struct worker){ vg_counter_block_row(blk, i), i };
		pthread_create(&threads[i], NULL, work, &workers[i]);
	}
	/* Reading while they write is allowed; the values only grow. */
	uint64_t prev = 0;
	for (int i = 0; i < 100; i++) {
		vg_counter_block_read(blk, values);
		CHECK(values[TEST_RX_packets] >= prev);
		prev = values[TEST_RX_packets];
	}
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	vg_counter_block_read(blk, values);
	CHECK_EQ_INT(values[TEST_RX_packets], THREADS * PER_THREAD);
	CHECK_EQ_INT(values[TEST_RX_malformed], THREADS * 2 * (PER_THREAD / 10));
	CHECK_EQ_INT(values[TEST_RX_late], 0);

	int n = vg_counters_format_prometheus(text, sizeof(text));
	CHECK(n > 0);
	CHECK(strstr(text, "# HELP vigil_test_rx_packets RTP packets received\n"
			   "# TYPE vigil_test_rx_packets counter\nvigil_test_rx_packets 800000\n") != NULL);
	CHECK(strstr(text, "vigil_test_rx_malformed 160000\n") != NULL);
	CHECK_EQ_INT(vg_counters_format_prometheus(text, 20), -ENOSPC);

	vg_counter_block_destroy(&blk);
	CHECK(blk == NULL);
	CHECK_EQ_INT(vg_counters_format_prometheus(text, sizeof(text)), 0); /* unregistered */
	return vg_test_exit();
}
