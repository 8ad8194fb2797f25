/*
 * The matcher's scan on the GPU (gpu_cuda.h: gpu_cuda_gallery_*): a watchlist resident in device
 * memory, an exact batched scan, and top-k on the device.
 *
 * Exactness: the key of entry x for query q is the matcher's own (match.h): ||x||^2 - 2 q.x (L2)
 * or -q.x (cosine), with q.x one fmaf chain in dimension order and ||x||^2 summed in double and
 * rounded once (on the host, at upload). fmaf is IEEE fused multiply-add on both sides, so the
 * GPU's keys are bit-identical to the CPU kernels' and the same entries win, ties broken by
 * enrolment order. That rules out a cuBLAS GEMM, which reorders the sums; the scan is our kernel.
 *
 * Layout: entries transposed (dimension-major, padded to a multiple of 256), so the 256 threads
 * of a block read 256 consecutive floats per dimension; queries in shared memory, QT at a time in
 * registers. Cost: nq * n * d fmaf, about 17 us for 256 queries of 17,000 x 128 at the H100's
 * fp32 rate (not yet measured: no GPU here).
 *
 * Invariant 1: the query descriptors are zeroed on the device and in the pinned staging buffer
 * when each search returns; the gallery is zeroed before it is freed.
 */
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cuda_runtime.h>

extern "C" {
#include "gpu_cuda.h"
}

#define SCAN_THREADS 256
#define SCAN_QT 8            /* queries per thread pass: QT accumulators in registers */
#define TOPK_THREADS 256
#define QUERY_CHUNK 64       /* keys are materialised for this many queries at a time */

struct gpu_cuda_gallery {
	int device;
	unsigned d;
	int metric;             /* 0: L2, 1: cosine */
	size_t n, n_pad;
	unsigned max_queries;
	float *xt;              /* d x n_pad, dimension-major */
	float *norm;            /* n_pad: ||x||^2, rounded from double */
	unsigned long long *seq;
	float *q;               /* QUERY_CHUNK x d */
	float *keys;            /* QUERY_CHUNK x n_pad */
	unsigned *out_idx;      /* QUERY_CHUNK x GPU_CUDA_K_MAX */
	float *out_key;
	unsigned *out_got;      /* QUERY_CHUNK */
	float *host_q;          /* pinned staging */
	unsigned *host_idx, *host_got;
	float *host_key;
	cudaStream_t stream;
};

int gpu_cuda_error(cudaError_t e, const char *what); /* gpu_cuda_device.cu */

__global__ static void scan_kernel(const float *__restrict__ xt, const float *__restrict__ norm,
				   const float *__restrict__ q, float *__restrict__ keys, unsigned d, size_t n,
				   size_t n_pad, unsigned nq, int metric)
{
	extern __shared__ float qs[]; /* SCAN_QT x d */
	size_t i = (size_t)blockIdx.x * SCAN_THREADS + threadIdx.x;
	unsigned q0 = blockIdx.y * SCAN_QT, nt = min(SCAN_QT, nq - q0);
	float acc[SCAN_QT];

	for (unsigned t = threadIdx.x; t < nt * d; t += SCAN_THREADS)
		qs[t] = q[(size_t)q0 * d + t];
	__syncthreads();
#pragma unroll
	for (unsigned j = 0; j < SCAN_QT; j++)
		acc[j] = 0.0f;
	if (i >= n)
		return;
	for (unsigned k = 0; k < d; k++) {
		float x = xt[(size_t)k * n_pad + i];
#pragma unroll
		for (unsigned j = 0; j < SCAN_QT; j++)
			if (j < nt)
				acc[j] = fmaf(qs[j * d + k], x, acc[j]); /* dimension order, as match.h says */
	}
	for (unsigned j = 0; j < nt; j++)
		keys[(size_t)(q0 + j) * n_pad + i] = metric == 0 ? fmaf(-2.0f, acc[j], norm[i]) : fmaf(-1.0f, acc[j], 0.0f);
}

/* (key, seq) order: lower key first, then earlier enrolment. */
__device__ static inline bool before(float ka, unsigned long long sa, float kb, unsigned long long sb)
{
	return ka < kb || (ka == kb && sa < sb);
}

/* Insert (KEY, IDX) into the sorted list of K; unused slots hold idx UINT_MAX and key +inf. */
__device__ static inline void topk_insert(float *lk, unsigned *li, const unsigned long long *seq, unsigned k, float key,
					  unsigned idx)
{
	unsigned long long s = seq[idx];
	unsigned p = k;

	while (p > 0 && (li[p - 1] == UINT_MAX || before(key, s, lk[p - 1], seq[li[p - 1]])))
		p--;
	if (p >= k)
		return;
	for (unsigned j = k - 1; j > p; j--) {
		lk[j] = lk[j - 1];
		li[j] = li[j - 1];
	}
	lk[p] = key;
	li[p] = idx;
}

/* One block per query: each thread keeps its own top k over a stride, then pairs merge in a tree. */
__global__ static void topk_kernel(const float *__restrict__ keys, const unsigned long long *__restrict__ seq,
				   size_t n, size_t n_pad, unsigned k, unsigned *out_idx, float *out_key, unsigned *out_got)
{
	__shared__ float sk[TOPK_THREADS * GPU_CUDA_K_MAX];
	__shared__ unsigned si[TOPK_THREADS * GPU_CUDA_K_MAX];
	const float *row = keys + (size_t)blockIdx.x * n_pad;
	float *lk = sk + threadIdx.x * GPU_CUDA_K_MAX;
	unsigned *li = si + threadIdx.x * GPU_CUDA_K_MAX;

	for (unsigned j = 0; j < k; j++) {
		lk[j] = INFINITY;
		li[j] = UINT_MAX;
	}
	for (size_t i = threadIdx.x; i < n; i += TOPK_THREADS)
		topk_insert(lk, li, seq, k, row[i], (unsigned)i);
	__syncthreads();
	for (unsigned stride = TOPK_THREADS / 2; stride > 0; stride /= 2) {
		if (threadIdx.x < stride) {
			const float *ok = sk + (threadIdx.x + stride) * GPU_CUDA_K_MAX;
			const unsigned *oi = si + (threadIdx.x + stride) * GPU_CUDA_K_MAX;
			for (unsigned j = 0; j < k && oi[j] != UINT_MAX; j++)
				topk_insert(lk, li, seq, k, ok[j], oi[j]);
		}
		__syncthreads();
	}
	if (threadIdx.x == 0) {
		unsigned got = 0;
		for (unsigned j = 0; j < k; j++) {
			out_idx[blockIdx.x * GPU_CUDA_K_MAX + j] = li[j];
			out_key[blockIdx.x * GPU_CUDA_K_MAX + j] = lk[j];
			got += li[j] != UINT_MAX;
		}
		out_got[blockIdx.x] = got;
	}
}

extern "C" int gpu_cuda_gallery_create(struct gpu_cuda_gallery **out, int device, unsigned d, int metric,
				       const float *rows, const uint64_t *seq, size_t n, unsigned max_queries)
{
	struct gpu_cuda_gallery *g;
	float *host_t = NULL, *host_norm = NULL;
	unsigned long long *host_seq = NULL;
	size_t t_bytes;
	cudaError_t e;
	int rc, count = gpu_cuda_device_count();

	if (count < 0)
		return count;
	if (device < 0 || device >= count)
		return -ENODEV;
	if (d == 0 || d > GPU_CUDA_D_MAX || (metric != 0 && metric != 1) || n == 0 || n >= UINT_MAX ||
	    max_queries == 0)
		return -EINVAL;
	if ((e = cudaSetDevice(device)) != cudaSuccess)
		return gpu_cuda_error(e, "cudaSetDevice");
	g = (struct gpu_cuda_gallery *)calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->device = device;
	g->d = d;
	g->metric = metric;
	g->n = n;
	g->n_pad = (n + SCAN_THREADS - 1) / SCAN_THREADS * SCAN_THREADS;
	g->max_queries = max_queries;
	t_bytes = (size_t)d * g->n_pad * sizeof(float);
	host_t = (float *)calloc((size_t)d * g->n_pad, sizeof(float));
	host_norm = (float *)calloc(g->n_pad, sizeof(float));
	host_seq = (unsigned long long *)calloc(g->n_pad, sizeof(*host_seq));
	if (!host_t || !host_norm || !host_seq) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		double ss = 0;
		for (unsigned k = 0; k < d; k++) {
			float v = rows[i * d + k];
			host_t[(size_t)k * g->n_pad + i] = v;
			ss += (double)v * v;
		}
		host_norm[i] = (float)ss;
		host_seq[i] = seq ? seq[i] : i;
	}
	if ((e = cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking)) != cudaSuccess ||
	    (e = cudaMalloc(&g->xt, t_bytes)) != cudaSuccess ||
	    (e = cudaMalloc(&g->norm, g->n_pad * sizeof(float))) != cudaSuccess ||
	    (e = cudaMalloc(&g->seq, g->n_pad * sizeof(*g->seq))) != cudaSuccess ||
	    (e = cudaMalloc(&g->q, (size_t)QUERY_CHUNK * d * sizeof(float))) != cudaSuccess ||
	    (e = cudaMalloc(&g->keys, (size_t)QUERY_CHUNK * g->n_pad * sizeof(float))) != cudaSuccess ||
	    (e = cudaMalloc(&g->out_idx, QUERY_CHUNK * GPU_CUDA_K_MAX * sizeof(unsigned))) != cudaSuccess ||
	    (e = cudaMalloc(&g->out_key, QUERY_CHUNK * GPU_CUDA_K_MAX * sizeof(float))) != cudaSuccess ||
	    (e = cudaMalloc(&g->out_got, QUERY_CHUNK * sizeof(unsigned))) != cudaSuccess ||
	    (e = cudaMallocHost(&g->host_q, (size_t)QUERY_CHUNK * d * sizeof(float))) != cudaSuccess ||
	    (e = cudaMallocHost(&g->host_idx, QUERY_CHUNK * GPU_CUDA_K_MAX * sizeof(unsigned))) != cudaSuccess ||
	    (e = cudaMallocHost(&g->host_key, QUERY_CHUNK * GPU_CUDA_K_MAX * sizeof(float))) != cudaSuccess ||
	    (e = cudaMallocHost(&g->host_got, QUERY_CHUNK * sizeof(unsigned))) != cudaSuccess ||
	    (e = cudaMemcpy(g->xt, host_t, t_bytes, cudaMemcpyHostToDevice)) != cudaSuccess ||
	    (e = cudaMemcpy(g->norm, host_norm, g->n_pad * sizeof(float), cudaMemcpyHostToDevice)) != cudaSuccess ||
	    (e = cudaMemcpy(g->seq, host_seq, g->n_pad * sizeof(*g->seq), cudaMemcpyHostToDevice)) != cudaSuccess) {
		rc = gpu_cuda_error(e, "gallery upload");
		goto out;
	}
	rc = 0;
	*out = g;
	g = NULL;
out:
	if (host_t) /* the watchlist's descriptors, transposed */
		memset(host_t, 0, t_bytes);
	free(host_t);
	free(host_norm);
	free(host_seq);
	gpu_cuda_gallery_destroy(&g); /* NULL on success */
	return rc;
}

extern "C" int gpu_cuda_gallery_search(struct gpu_cuda_gallery *g, const float *queries, unsigned nq, unsigned k,
				       uint32_t *idx, float *key, unsigned *got)
{
	cudaError_t e = cudaSuccess;
	int rc = 0;

	if (nq == 0 || nq > g->max_queries || k == 0 || k > GPU_CUDA_K_MAX)
		return -EINVAL;
	if ((e = cudaSetDevice(g->device)) != cudaSuccess)
		return gpu_cuda_error(e, "cudaSetDevice");
	for (unsigned q0 = 0; q0 < nq; q0 += QUERY_CHUNK) {
		unsigned m = nq - q0 < QUERY_CHUNK ? nq - q0 : QUERY_CHUNK;
		size_t q_bytes = (size_t)m * g->d * sizeof(float);
		dim3 grid((unsigned)(g->n_pad / SCAN_THREADS), (m + SCAN_QT - 1) / SCAN_QT);

		memcpy(g->host_q, queries + (size_t)q0 * g->d, q_bytes);
		if ((e = cudaMemcpyAsync(g->q, g->host_q, q_bytes, cudaMemcpyHostToDevice, g->stream)) != cudaSuccess)
			break;
		scan_kernel<<<grid, SCAN_THREADS, SCAN_QT * g->d * sizeof(float), g->stream>>>(
			g->xt, g->norm, g->q, g->keys, g->d, g->n, g->n_pad, m, g->metric);
		topk_kernel<<<m, TOPK_THREADS, 0, g->stream>>>(g->keys, g->seq, g->n, g->n_pad, k, g->out_idx, g->out_key,
							      g->out_got);
		/* The batch retires: its descriptors leave the device and the staging buffer (invariant 1). */
		cudaMemsetAsync(g->q, 0, q_bytes, g->stream);
		if ((e = cudaGetLastError()) != cudaSuccess ||
		    (e = cudaMemcpyAsync(g->host_idx, g->out_idx, m * GPU_CUDA_K_MAX * sizeof(unsigned),
					 cudaMemcpyDeviceToHost, g->stream)) != cudaSuccess ||
		    (e = cudaMemcpyAsync(g->host_key, g->out_key, m * GPU_CUDA_K_MAX * sizeof(float),
					 cudaMemcpyDeviceToHost, g->stream)) != cudaSuccess ||
		    (e = cudaMemcpyAsync(g->host_got, g->out_got, m * sizeof(unsigned), cudaMemcpyDeviceToHost,
					 g->stream)) != cudaSuccess ||
		    (e = cudaStreamSynchronize(g->stream)) != cudaSuccess)
			break;
		memset(g->host_q, 0, q_bytes);
		for (unsigned j = 0; j < m; j++) {
			got[q0 + j] = g->host_got[j];
			for (unsigned t = 0; t < k; t++) {
				idx[(size_t)(q0 + j) * k + t] = g->host_idx[j * GPU_CUDA_K_MAX + t];
				key[(size_t)(q0 + j) * k + t] = g->host_key[j * GPU_CUDA_K_MAX + t];
			}
		}
	}
	if (e != cudaSuccess) {
		memset(g->host_q, 0, (size_t)QUERY_CHUNK * g->d * sizeof(float));
		rc = gpu_cuda_error(e, "gallery search");
	}
	return rc;
}

extern "C" size_t gpu_cuda_gallery_size(const struct gpu_cuda_gallery *g)
{
	return g->n;
}

extern "C" void gpu_cuda_gallery_destroy(struct gpu_cuda_gallery **gp)
{
	struct gpu_cuda_gallery *g = *gp;

	if (!g)
		return;
	cudaSetDevice(g->device);
	/* Descriptors are biometric: overwrite the device copies before the memory is given back. */
	if (g->xt)
		cudaMemset(g->xt, 0, (size_t)g->d * g->n_pad * sizeof(float));
	if (g->q)
		cudaMemset(g->q, 0, (size_t)QUERY_CHUNK * g->d * sizeof(float));
	cudaDeviceSynchronize();
	cudaFree(g->xt);
	cudaFree(g->norm);
	cudaFree(g->seq);
	cudaFree(g->q);
	cudaFree(g->keys);
	cudaFree(g->out_idx);
	cudaFree(g->out_key);
	cudaFree(g->out_got);
	cudaFreeHost(g->host_q);
	cudaFreeHost(g->host_idx);
	cudaFreeHost(g->host_key);
	cudaFreeHost(g->host_got);
	if (g->stream)
		cudaStreamDestroy(g->stream);
	free(g);
	*gp = NULL;
}
