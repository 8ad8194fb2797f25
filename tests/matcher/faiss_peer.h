/* The C face of faiss_peer.cpp (FAISS IndexFlatL2/IP), for bench_match.c only. */
#ifndef FAISS_PEER_H
#define FAISS_PEER_H
void *faiss_peer_new(int d, int inner_product);
void faiss_peer_add(void *idx, long n, const float *x);
void faiss_peer_search(void *idx, long nq, const float *q, int k, float *dist, long *labels);
void faiss_peer_free(void *idx);
void faiss_peer_threads(int n);
#endif
