/*
 * Scans racing writers: a writer enrols, removes, purges and re-creates watchlists while two
 * reader threads (each with a two-thread context) query. Every query result must equal brute
 * force over the live set of some snapshot published between the query's start and its end:
 * never a half-applied write, never a freed entry. Run under --setup=tsan too.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "match.h"
#include "match_brute.h"
#include "vg_test.h"

#define D 32
#define BASE 200
#define NOPS 300
#define NE (BASE + NOPS)
#define NREADERS 2
#define RECS 4000
#define BATCH 2
#define K 4
#define NQV 64

static float vecs[NE][D], qv[NQV][D];
static char names[NE][16];
static uint64_t seqs[NE];
static unsigned char live[NOPS + 1][NE]; /* live set after op v (0: after the base enrolment) */
static _Atomic unsigned done_ops, readers_ready;
static struct match_db *db;

struct rec {
	unsigned a, b;  /* ops done at start, at end */
	unsigned q[BATCH];
	struct match_result res[BATCH];
};

static struct rec recs[NREADERS][RECS];
static unsigned nrecs[NREADERS];

/* What op i does: enrol entry BASE+i, remove an earlier subject, or purge and re-create. */
enum op { OP_ENROLL, OP_REMOVE, OP_PURGE };

static enum op op_of(unsigned i, unsigned *victim)
{
	if (i == NOPS / 2)
		return OP_PURGE;
	if (i % 3 == 2) {
		*victim = (i * 37) % (BASE + i); /* an entry enrolled before (maybe already gone) */
		return OP_REMOVE;
	}
	return OP_ENROLL;
}

static void *writer(void *arg)
{
	char err[200];

	while (atomic_load(&readers_ready) < NREADERS)
		sched_yield();
	for (unsigned i = 0; i < NOPS; i++) {
		unsigned victim = 0;
		struct match_entry e = { .subject = names[BASE + i], .watchlist = 1, .desc = vecs[BASE + i] };

		switch (op_of(i, &victim)) {
		case OP_ENROLL:
			if (match_enroll(db, &e, 1, err, sizeof(err)) != 1)
				vg_test_failures++;
			break;
		case OP_REMOVE:
			if (match_remove_subject(db, names[victim]) < 0)
				vg_test_failures++;
			break;
		case OP_PURGE:
			if (match_purge(db) < 0 || match_watchlist_set(db, 1, 1.0f) < 0)
				vg_test_failures++;
			break;
		}
		atomic_store(&done_ops, i + 1);
		sched_yield(); /* let the readers interleave with every write, even on one core */
	}
	return arg;
}

static void *reader(void *arg)
{
	unsigned r = (unsigned)(uintptr_t)arg, n = 0;
	struct match_ctx *ctx = NULL;
	uint64_t seed = 1234 + r;
	float q[BATCH * D];

	if (match_ctx_open(&ctx, db, 2, BATCH) < 0) {
		vg_test_failures++;
		return NULL;
	}
	while (n < RECS) {
		struct rec *c = &recs[r][n];

		for (unsigned j = 0; j < BATCH; j++) {
			c->q[j] = (unsigned)(brute_rand(&seed) % NQV);
			memcpy(q + j * D, qv[c->q[j]], sizeof(qv[0]));
		}
		c->a = atomic_load(&done_ops);
		if (match_query(ctx, q, BATCH, K, c->res) != BATCH)
			vg_test_failures++;
		c->b = atomic_load(&done_ops);
		if (n++ == 0)
			atomic_fetch_add(&readers_ready, 1);
		if (c->a == NOPS)
			break;
	}
	nrecs[r] = n;
	match_ctx_close(&ctx);
	return NULL;
}

static int matches_version(const struct rec *c, unsigned v)
{
	struct brute_entry be[NE];

	for (unsigned i = 0; i < NE; i++)
		be[i] = (struct brute_entry){ .v = vecs[i], .seq = seqs[i], .live = live[v][i] };
	for (unsigned j = 0; j < BATCH; j++) {
		unsigned idx[K], got = brute_topk(be, NE, qv[c->q[j]], D, MATCH_METRIC_L2, K, idx);

		if (got != c->res[j].n)
			return 0;
		for (unsigned h = 0; h < got; h++)
			if (strcmp(names[idx[h]], c->res[j].hit[h].subject) != 0 || seqs[idx[h]] != c->res[j].hit[h].seq)
				return 0;
	}
	return 1;
}

int main(void)
{
	struct match_db_conf conf = { .d = D, .metric = MATCH_METRIC_L2, .n_shards = 3, .model = "m" };
	struct match_entry e[BASE];
	pthread_t w, rd[NREADERS];
	uint64_t seed = 99, seq = 1;
	char err[200];

	for (unsigned i = 0; i < NE; i++) {
		for (unsigned k = 0; k < D; k++)
			vecs[i][k] = brute_randf(&seed);
		snprintf(names[i], sizeof(names[i]), "e%u", i);
	}
	for (unsigned i = 0; i < NQV; i++)
		for (unsigned k = 0; k < D; k++)
			qv[i][k] = brute_randf(&seed);
	/* The expected live sets and enrolment numbers, replayed from the op list. */
	for (unsigned i = 0; i < BASE; i++) {
		live[0][i] = 1;
		seqs[i] = seq++;
		e[i] = (struct match_entry){ .subject = names[i], .watchlist = 1, .desc = vecs[i] };
	}
	for (unsigned i = 0; i < NOPS; i++) {
		unsigned victim = 0;

		memcpy(live[i + 1], live[i], NE);
		switch (op_of(i, &victim)) {
		case OP_ENROLL:
			live[i + 1][BASE + i] = 1;
			seqs[BASE + i] = seq++;
			break;
		case OP_REMOVE:
			live[i + 1][victim] = 0;
			break;
		case OP_PURGE:
			memset(live[i + 1], 0, NE);
			break;
		}
	}

	CHECK_EQ_INT(match_db_open(&db, &conf, err, sizeof(err)), 0);
	CHECK_EQ_INT(match_watchlist_set(db, 1, 1.0f), 0);
	CHECK_EQ_INT(match_enroll(db, e, BASE, err, sizeof(err)), BASE);
	for (unsigned r = 0; r < NREADERS; r++)
		pthread_create(&rd[r], NULL, reader, (void *)(uintptr_t)r);
	pthread_create(&w, NULL, writer, NULL);
	pthread_join(w, NULL);
	for (unsigned r = 0; r < NREADERS; r++)
		pthread_join(rd[r], NULL);

	unsigned checked = 0, raced = 0;

	for (unsigned r = 0; r < NREADERS; r++)
		for (unsigned n = 0; n < nrecs[r]; n++) {
			const struct rec *c = &recs[r][n];
			unsigned hi = c->b + 1 > NOPS ? NOPS : c->b + 1;
			int ok = 0;

			/* the snapshot seen was published after op a finished and before op b+1 finished */
			for (unsigned v = c->a; v <= hi && !ok; v++)
				ok = matches_version(c, v);
			if (!ok) {
				fprintf(stderr, "reader %u query %u (ops %u..%u): no snapshot gives this result\n", r, n,
					c->a, c->b);
				vg_test_failures++;
			}
			checked++;
			raced += c->a != c->b;
		}
	fprintf(stderr, "%u results checked, %u raced a write\n", checked, raced);
	CHECK(checked > 0);
	CHECK(raced > 0);
	match_db_close(&db);
	return vg_test_exit();
}
