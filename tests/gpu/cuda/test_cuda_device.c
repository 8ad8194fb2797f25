/*
 * gpu/cuda device layer: where a GPU is, the self-test kernel built for it computes exactly what
 * the CPU computes on the same inputs, for several sizes (partial last block included), and a bad
 * device index is refused. Where there is none: skip (77).
 */
#include <errno.h>
#include <stdio.h>

#include "vg_test.h"
#include "gpu_cuda.h"

int main(void)
{
	struct gpu_cuda_device_info info;
	int n = gpu_cuda_device_count();

	if (n < 0) {
		fprintf(stderr, "cuda: %s\n", gpu_cuda_last_error());
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "cuda: no CUDA device here (runtime %d): skipped\n", gpu_cuda_runtime_version());
		return VG_TEST_SKIP;
	}
	for (int d = 0; d < n; d++) {
		CHECK_EQ_INT(gpu_cuda_device_info(d, &info), 0);
		printf("device %d: %s, sm_%d%d, %d SMs, %.1f GiB, L2 %.0f MiB\n", d, info.name, info.major, info.minor,
		       info.multiprocessors, info.global_mem_bytes / 1073741824.0, info.l2_bytes / 1048576.0);
		CHECK(info.multiprocessors > 0);
		static const size_t sizes[] = { 1, 255, 257, 1 << 20, (1 << 22) + 3 };
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			int rc = gpu_cuda_selftest(d, sizes[i], 0x9e3779b9u + (uint32_t)i);
			if (rc < 0)
				fprintf(stderr, "cuda: %s\n", gpu_cuda_last_error());
			CHECK_EQ_INT(rc, 0);
		}
	}
	CHECK_EQ_INT(gpu_cuda_device_info(n, &info), -ENODEV);
	CHECK_EQ_INT(gpu_cuda_selftest(n, 16, 1), -ENODEV);
	return vg_test_exit();
}
