/*
 * Fuzz the watchlist file loader. Each input is loaded twice: as it is (the checksum refuses
 * almost every mutation), and with its last 32 bytes replaced by the right SHA-256, so that the
 * fuzzer reaches the validation behind the checksum. What loads must then answer a query.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct match_db_conf conf = { .d = 16, .metric = MATCH_METRIC_L2, .n_shards = 2, .model = "fuzz" };
	struct match_db *db = NULL;
	struct match_ctx *ctx = NULL;
	struct match_result res;
	float q[16] = { 0 };
	char err[256];
	uint8_t *copy;

	if (match_db_open(&db, &conf, err, sizeof(err)) < 0 || match_ctx_open(&ctx, db, 1, 1) < 0)
		abort();
	match_load(db, data, size, err, sizeof(err));
	if (size >= 32 && (copy = malloc(size))) {
		memcpy(copy, data, size);
		crypto_hash_sha256(copy + size - 32, copy, size - 32);
		if (match_load(db, copy, size, err, sizeof(err)) > 0) {
			if (match_query(ctx, q, 1, MATCH_K_MAX, &res) != 1 || res.n == 0)
				abort();
		}
		free(copy);
	}
	match_ctx_close(&ctx);
	match_db_close(&db);
	return 0;
}
