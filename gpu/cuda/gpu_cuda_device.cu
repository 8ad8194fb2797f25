/*
 * Device discovery and self-test for the CUDA backend (gpu_cuda.h).
 * Built by nvcc for sm_90 with PTX (see the top-level meson.build), so newer GPUs JIT the PTX.
 */
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cuda_runtime.h>

extern "C" {
#include "gpu_cuda.h"
}

/* The CUDA error behind the last -EIO of this thread (vg_log.h is C11 atomics: not for nvcc's C++). */
static thread_local char last_error[192] = "no error";

/* The same xorshift on both sides, so the CPU and the GPU see the same inputs. */
__host__ __device__ static inline float input_value(uint32_t seed, uint32_t i)
{
	uint32_t x = seed ^ (i * 2654435761u);
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return (float)(x & 0xffffff) / (float)0x1000000 * 8.0f - 4.0f;
}

__global__ static void selftest_kernel(float *out, size_t n, uint32_t seed)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n) {
		float x = input_value(seed, (uint32_t)i);
		out[i] = fmaf(x, x, 1.0f);
	}
}

/* Also the other .cu files' way to turn a CUDA error into -EIO with its text. */
int gpu_cuda_error(cudaError_t e, const char *what);
int gpu_cuda_error(cudaError_t e, const char *what)
{
	snprintf(last_error, sizeof(last_error), "%s: %s", what, cudaGetErrorString(e));
	return -EIO;
}

extern "C" int gpu_cuda_device_count(void)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	/* No driver, no device, or a driver older than the runtime: no usable GPU, not a failure. */
	if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInitializationError)
		return 0;
	if (e != cudaSuccess)
		return gpu_cuda_error(e, "cudaGetDeviceCount");
	return n;
}

extern "C" int gpu_cuda_device_info(int index, struct gpu_cuda_device_info *out)
{
	cudaDeviceProp prop;
	int n = gpu_cuda_device_count();

	if (n < 0)
		return n;
	if (index < 0 || index >= n)
		return -ENODEV;
	cudaError_t e = cudaGetDeviceProperties(&prop, index);
	if (e != cudaSuccess)
		return gpu_cuda_error(e, "cudaGetDeviceProperties");
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", prop.name);
	out->major = prop.major;
	out->minor = prop.minor;
	out->multiprocessors = prop.multiProcessorCount;
	out->global_mem_bytes = prop.totalGlobalMem;
	out->l2_bytes = (uint64_t)prop.l2CacheSize;
	return 0;
}

extern "C" int gpu_cuda_selftest(int index, size_t n, uint32_t seed)
{
	float *dev = NULL, *host = NULL;
	int mismatches = 0, rc;
	cudaError_t e;
	int count = gpu_cuda_device_count();

	if (count < 0)
		return count;
	if (index < 0 || index >= count)
		return -ENODEV;
	if (n == 0 || n > (1u << 28))
		return -EINVAL;
	if ((e = cudaSetDevice(index)) != cudaSuccess)
		return gpu_cuda_error(e, "cudaSetDevice");
	host = (float *)malloc(n * sizeof(float));
	if (!host)
		return -ENOMEM;
	if ((e = cudaMalloc(&dev, n * sizeof(float))) != cudaSuccess) {
		rc = gpu_cuda_error(e, "cudaMalloc");
		goto out_free_host;
	}
	/* Poison the output so an element the kernel never wrote cannot pass. */
	if ((e = cudaMemset(dev, 0xff, n * sizeof(float))) != cudaSuccess) {
		rc = gpu_cuda_error(e, "cudaMemset");
		goto out_free_dev;
	}
	selftest_kernel<<<(unsigned)((n + 255) / 256), 256>>>(dev, n, seed);
	if ((e = cudaGetLastError()) != cudaSuccess || (e = cudaDeviceSynchronize()) != cudaSuccess) {
		rc = gpu_cuda_error(e, "selftest kernel");
		goto out_free_dev;
	}
	if ((e = cudaMemcpy(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost)) != cudaSuccess) {
		rc = gpu_cuda_error(e, "cudaMemcpy");
		goto out_free_dev;
	}
	for (size_t i = 0; i < n; i++) {
		float x = input_value(seed, (uint32_t)i);
		if (host[i] != fmaf(x, x, 1.0f))
			mismatches++;
	}
	rc = mismatches;
out_free_dev:
	cudaFree(dev);
out_free_host:
	free(host);
	return rc;
}

/* Eight independent FMA chains per thread, so that the pipelines stay full: the CUDA cores' peak. */
#define PEAK_CHAINS 8
__global__ static void peak_kernel(float *out, int iters, float a, float b)
{
	float acc[PEAK_CHAINS];

	for (int c = 0; c < PEAK_CHAINS; c++)
		acc[c] = (float)(threadIdx.x + c);
	for (int i = 0; i < iters; i++)
		for (int c = 0; c < PEAK_CHAINS; c++)
			acc[c] = fmaf(acc[c], a, b);
	{
		float s = 0.0f;

		for (int c = 0; c < PEAK_CHAINS; c++)
			s += acc[c];
		if (s == 12345.678f)   /* never: keeps the chains from being optimised away */
			out[0] = s;
	}
}

extern "C" double gpu_cuda_peak_gflops(int index)
{
	struct gpu_cuda_device_info info;
	cudaEvent_t t0, t1;
	float *out = NULL, ms = 0, best = 0;
	const int iters = 1 << 14;
	unsigned blocks;

	if (gpu_cuda_device_info(index, &info) || cudaSetDevice(index) != cudaSuccess ||
	    cudaMalloc(&out, sizeof(float)) != cudaSuccess)
		return 0;
	blocks = (unsigned)info.multiprocessors * 16;
	cudaEventCreate(&t0);
	cudaEventCreate(&t1);
	for (int run = 0; run < 4; run++) {   /* the first run warms the clocks up */
		cudaEventRecord(t0);
		peak_kernel<<<blocks, 256>>>(out, iters, 0.999f, 0.001f);
		cudaEventRecord(t1);
		cudaEventSynchronize(t1);
		cudaEventElapsedTime(&ms, t0, t1);
		if (run > 0 && ms > 0) {
			float g = (float)(2.0 * PEAK_CHAINS * iters * blocks * 256.0 / (ms * 1e6));

			best = g > best ? g : best;
		}
	}
	cudaEventDestroy(t0);
	cudaEventDestroy(t1);
	cudaFree(out);
	return cudaGetLastError() == cudaSuccess ? best : 0;
}

extern "C" int gpu_cuda_runtime_version(void)
{
	return CUDART_VERSION;
}

extern "C" const char *gpu_cuda_last_error(void)
{
	return last_error;
}

extern "C" int gpu_cuda_host_register(void *p, size_t len)
{
	cudaError_t e;

	if (!p || !len)
		return -EINVAL;
	if ((e = cudaHostRegister(p, len, cudaHostRegisterPortable)) != cudaSuccess)
		return gpu_cuda_error(e, "cudaHostRegister");
	return 0;
}

extern "C" void gpu_cuda_host_unregister(void *p)
{
	if (p)
		cudaHostUnregister(p);
}
