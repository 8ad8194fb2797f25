/**
 * @file gpu_cuda.h
 * The CUDA backend's device layer: which GPUs this machine has, and a self-test that proves a
 * kernel built for them runs and computes what the CPU computes. vigild uses it at start-up to
 * choose the CUDA or CPU backend; the `gpu` test suite uses it to skip (exit 77) where there is
 * no device.
 *
 * Plain C API over the CUDA runtime; no CUDA types leak into callers.
 */
#ifndef GPU_CUDA_H
#define GPU_CUDA_H

#include <stddef.h>
#include <stdint.h>

struct gpu_cuda_device_info {
	char name[256];
	int major, minor;         /* compute capability */
	int multiprocessors;
	uint64_t global_mem_bytes;
	uint64_t l2_bytes;
};

/**
 * The number of usable CUDA devices: 0 where there is no GPU or no driver (that is not an error),
 * or -errno where the runtime fails in another way.
 */
int gpu_cuda_device_count(void);

/** Describe device INDEX. Returns 0, -ENODEV (no such device) or -EIO. */
int gpu_cuda_device_info(int index, struct gpu_cuda_device_info *out /* OUT */);

/**
 * Run a kernel on device INDEX that computes, for N pseudo-random floats made from SEED, each
 * x*x + 1 (fused), copy the result back and compare it with the same computed on the CPU.
 * Returns the number of mismatching elements (0: the device works), or -errno
 * (-ENODEV, -EINVAL, -ENOMEM, or -EIO with the CUDA error in gpu_cuda_last_error()).
 */
int gpu_cuda_selftest(int index, size_t n, uint32_t seed);

/** What the CUDA runtime said behind this thread's last -EIO ("cudaMalloc: out of memory"). */
const char *gpu_cuda_last_error(void);

/** The CUDA runtime's version (e.g. 13000 for 13.0) this backend was built with. */
int gpu_cuda_runtime_version(void);

#endif /* GPU_CUDA_H */
