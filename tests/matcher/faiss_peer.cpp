// The benchmark's peer: FAISS IndexFlatL2 / IndexFlatIP behind a C interface, because Debian's
// libfaiss.a has no C API compiled in. Linked only into bench_match.
#include <faiss/IndexFlat.h>
#include <omp.h>

extern "C" {
#include "faiss_peer.h"
}

void *faiss_peer_new(int d, int inner_product)
{
	if (inner_product)
		return new faiss::IndexFlatIP(d);
	return new faiss::IndexFlatL2(d);
}

void faiss_peer_add(void *idx, long n, const float *x)
{
	static_cast<faiss::IndexFlat *>(idx)->add(n, x);
}

void faiss_peer_search(void *idx, long nq, const float *q, int k, float *dist, long *labels)
{
	static_cast<faiss::IndexFlat *>(idx)->search(nq, q, k, dist, reinterpret_cast<faiss::Index::idx_t *>(labels));
}

void faiss_peer_free(void *idx)
{
	delete static_cast<faiss::IndexFlat *>(idx);
}

void faiss_peer_threads(int n)
{
	omp_set_num_threads(n);
}
