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

/**
 * The fp32 FMA throughput device INDEX reaches (GFLOP/s, best of three runs of a kernel of
 * independent FMA chains): the benchmarks' peak to quote fractions of. 0 on any error.
 */
double gpu_cuda_peak_gflops(int index);

/**
 * Pin host memory [P, P + LEN) for transfers to and from the GPUs (cudaHostRegister, portable), so
 * that frames copied from it go by DMA, asynchronously: for buffers the caller already owns (a
 * camera's frame pool). Unregister before freeing. Returns 0, -EINVAL or -EIO.
 */
int gpu_cuda_host_register(void *p, size_t len);
void gpu_cuda_host_unregister(void *p);

/** What the CUDA runtime said behind this thread's last -EIO ("cudaMalloc: out of memory"). */
const char *gpu_cuda_last_error(void);

/* ---- the matcher's scan device (gpu_cuda_match.cu) ------------------------------------------ */

struct match_db;

/**
 * Make GPU DEVICE the scan device of DB (match.h: match_db_set_device(), with its rules: before
 * any query context is opened). The matcher's writers then keep a copy of every snapshot on the
 * GPU, segment by segment, and match_query() and match_query_device() search there, with the CPU
 * matcher's keys, ranks and values bit for bit (our kernel: a cuBLAS GEMM would reorder the sums).
 * Each query context gets its own stream and scratch (9 MiB, and 12 x d bytes a query of its
 * max_batch, a third of that pinned), so contexts search concurrently. DEVICE -1 is the host
 * emulation: the same search steps run in loops on the CPU over host memory standing in for the
 * GPU's, for checking where there is no GPU (slow: ~4 ms a query at 17,000 entries, in batches).
 * Returns 0, -EINVAL, -ENODEV (no such device), -EBUSY (a context is open, or a device attached),
 * -ENOMEM or -EIO, with a reason in ERR.
 */
int gpu_cuda_match_attach(struct match_db *db, int device, char *err, size_t errlen);

/* What the matchers' device memory holds, for tests (all devices and the emulation together). */
struct gpu_cuda_match_census {
	uint64_t gallery_bytes;   /* copies of segments, bias arrays and tables, now */
	uint64_t scratch_bytes;   /* query contexts' scratch, device and pinned, now */
	uint64_t scratch_dirty;   /* bytes of that scratch not zero: 0 whenever no search runs */
	uint64_t uploaded_bytes;  /* copied to the device by writers, since the process started */
	uint64_t freed;           /* blocks given back, since the process started */
	uint64_t freed_dirty;     /* of them, given back with a byte not zero: must stay 0 */
};

/**
 * Test hook: take the census. Reads every block (on a GPU: copies it back), so only where no
 * search runs. From the first call on, every block given back on a GPU is read back first too
 * (the emulation always checks): slow, for tests only.
 */
void gpu_cuda_match_census(struct gpu_cuda_match_census *out /* OUT */);

/** Test hook: the next N allocations of matcher device memory fail (fault injection); 0 ends it. */
void gpu_cuda_match_fail_allocs(unsigned n);


/* ---- the face nets on the device (gpu_cuda_nets.cu) ------------------------------------------ */

struct gpu_model;
struct gpu_face;

/*
 * The CPU backend's three nets (gpu.h: SSD MobileNetV1, 68-point landmarks, the 128-d ResNet),
 * the same layers run by CUDA. Modes:
 *   GPU_CUDA_EXACT  our direct kernels in fp32, rounding every product and sum as gpu/'s
 *                   reference kernels do: the check mode (no cuDNN)
 *   GPU_CUDA_FP32   cuDNN in fp32 (FMA math, no TF32), the scale layers folded into the filters
 *   GPU_CUDA_FP16   the descriptor net in cuDNN with fp16 activations and filters on tensor cores,
 *                   fp32 accumulation; the detector and the landmarks as GPU_CUDA_FP32 (in fp16 their
 *                   boxes move a floored crop by a pixel now and then, and a descriptor with it)
 * DEVICE -1 is the host emulation: the very element kernels the device runs, called in a loop on
 * the CPU (EXACT and FP32: fp32; FP16: fp16 storage in the descriptor net), for checking where
 * there is no GPU. It is slow (seconds per detector pass).
 */
enum { GPU_CUDA_EXACT = 0, GPU_CUDA_FP32 = 1, GPU_CUDA_FP16 = 2 };

#define GPU_CUDA_NETS_MAX_BATCH 1024   /* crops per landmark or descriptor pass, at most */
#define GPU_CUDA_NETS_SSD_BATCH 4      /* 512x512 detector inputs per pass, at most */

struct gpu_cuda_nets;

/**
 * Copy MODEL's nets (opened by gpu_model_open) to DEVICE in MODE, with buffers for passes of up to
 * MAX_BATCH crops (GPU_CUDA_NETS_SSD_BATCH detector inputs). Everything a pass needs is allocated
 * here. Returns 0; -EINVAL, -ENODEV (no such device), -ENOMEM or -EIO with one line in ERR. The
 * model must outlive the nets.
 */
int gpu_cuda_nets_create(struct gpu_cuda_nets **out, const struct gpu_model *model, int device, int mode,
			 int max_batch, char *err, size_t errlen);

/** Zero and free everything on the device and in pinned memory; sets *N to NULL. Safe on NULL. */
void gpu_cuda_nets_destroy(struct gpu_cuda_nets **n);

/*
 * One pass on NB inputs (host memory, raw 0..255 pixels as gpu/'s toBatchTensor writes them, NHWC
 * back to back), results to host memory in the CPU forward's layout (gpu_int.h). Synchronous; one
 * caller at a time. Inputs, activations and outputs are zeroed on the device and in pinned memory
 * before it returns. Returns 0, -EINVAL (NB out of range) or -EIO (gpu_cuda_last_error()).
 */
int gpu_cuda_nets_ssd(struct gpu_cuda_nets *n, const float *in512, int nb, float *boxes, float *scores);
int gpu_cuda_nets_lm(struct gpu_cuda_nets *n, const float *in112, int nb, float *out136);
int gpu_cuda_nets_rec(struct gpu_cuda_nets *n, const float *in150, int nb, float *out128);

/** Layers cuDNN refused (run by the direct kernel instead), and modes it could not serve. */
int gpu_cuda_nets_fallbacks(const struct gpu_cuda_nets *n);

#define GPU_CUDA_PASS_SSD 1u
#define GPU_CUDA_PASS_LM 2u
#define GPU_CUDA_PASS_REC 4u
#define GPU_CUDA_PASS_ALL 7u

/**
 * Make MODEL's gpu_faces_* calls run the PASSES named (GPU_CUDA_PASS_*) on N; the rest of the
 * pipeline stays on the CPU. A pass that fails runs on the CPU instead and is counted
 * (gpu_model_offload_failures). N NULL or PASSES 0: the CPU for everything again.
 */
void gpu_cuda_nets_attach(struct gpu_cuda_nets *n, struct gpu_model *model, unsigned passes);

/* ---- preprocessing straight from decoded frames (gpu_cuda_nets.cu) --------------------------- */

enum { GPU_CUDA_RGB24 = 0, GPU_CUDA_I420 = 1, GPU_CUDA_NV12 = 2 };

/* A decoded frame: packed RGB24 (plane 0), I420 (Y, U, V) or NV12 (Y, interleaved UV), as a
 * decoder leaves it (pitches in bytes), in host memory or, ON_DEVICE, in the GPU's memory (a
 * frame NVDEC decoded, read in place). */
struct gpu_cuda_frame {
	const uint8_t *plane[3];
	int pitch[3];
	int format, width, height;
	int on_device;
};

/**
 * The nets' input from region (X, Y, W, H) of frame F in one pass: colour conversion (BT.601
 * limited range, 8.8 fixed point, the 2x2 block's chroma), then face-api's toBatchTensor (pad
 * to a square with zeros, CENTER as face-api centres it, bilinear resize to SIZE x SIZE): SIZE x
 * SIZE x 3 raw 0..255 floats into OUT, equal to gpu/'s gpu_to_batch_ref on the converted pixels
 * bit for bit. DEVICE -1: F and OUT in host memory, run on the CPU (the check); else device
 * memory (a decoder's frame, in place), run on that GPU, synchronously. Returns 0, -EINVAL or
 * -EIO.
 */
int gpu_cuda_to_batch(int device, const struct gpu_cuda_frame *f, int x, int y, int w, int h, int size, int center,
		      float *out);

/**
 * Zero the planes of frame F in DEVICE's memory (F->on_device: a decoder's surface that held a
 * passer-by's face, before the decoder reuses it). Returns 0, -EINVAL or -EIO.
 */
int gpu_cuda_frame_scrub(int device, const struct gpu_cuda_frame *f);

/* ---- the whole face pipeline on the device, batched across cameras (gpu_cuda_faces.cu) ------- */

/*
 * Everything from the decoded frame to the descriptor on the GPU, for a batch of frames from any
 * cameras: the detector's inputs straight from the frames (colour conversion, pad, resize; tiles),
 * one detector pass per up to SSD_BATCH inputs, box decoding and NMS per frame, the landmark crops
 * of every face of the batch in passes of up to CROP_BATCH, landmarks, alignment, the descriptor
 * crops and passes, and the quality figures. Only the faces' boxes, landmarks and quality come back
 * to the host; the descriptors stay on the device for the matcher (gpu_cuda_faces_queries) unless
 * asked for. Faces are found, cropped and dropped exactly as gpu.h's gpu_faces_run (or _tiled)
 * does on the same pixels: in the exact mode, bit for bit (tests/gpu/cuda/test_cuda_faces.c, device -1).
 *
 * Nothing is allocated per batch; steady-state passes replay as CUDA graphs (GRAPHS). After each
 * pass the net's buffers are zeroed; gpu_cuda_faces_retire() zeroes the rest of the batch.
 */
struct gpu_cuda_faces;

struct gpu_cuda_faces_conf {
	int device;                /* CUDA device, or -1: the host emulation (the check, slow) */
	int mode;                  /* GPU_CUDA_EXACT, GPU_CUDA_FP32 or GPU_CUDA_FP16 */
	int max_frames;            /* frames per batch, 1..GPU_CUDA_FACES_MAX_FRAMES */
	int max_width, max_height; /* the largest frame, 16..16384 */
	int max_faces;             /* per frame, 1..GPU_MAX_FACES */
	int tiled, overlap;        /* gpu_faces_run_tiled's native tiles (overlap 0..448) */
	int ssd_batch;             /* detector inputs per pass (0: 8 on a GPU, 2 in the emulation) */
	int crop_batch;            /* landmark and descriptor crops per pass (0: 64; 8 in the emulation) */
	int graphs;                /* replay the nets' passes as CUDA graphs */
};

#define GPU_CUDA_FACES_MAX_FRAMES 256
#define GPU_CUDA_FACES_CROP_MAX 640   /* the evidence crop's longest side */

struct gpu_cuda_faces_stats {
	uint64_t batches, frames, detector_inputs, faces;
	uint64_t graph_launches, graph_failures; /* passes replayed as graphs; sizes left eager */
	int cudnn_fallbacks;                     /* layers cuDNN refused (gpu_cuda_nets_fallbacks) */
	uint64_t device_bytes;                   /* memory held on the device (or the emulation's) */
};

/** Build the pipeline for MODEL's nets. Returns 0; -EINVAL, -ENODEV, -ENOMEM or -EIO with one line
 *  in ERR. The model must outlive it. */
int gpu_cuda_faces_create(struct gpu_cuda_faces **out, const struct gpu_model *model,
			  const struct gpu_cuda_faces_conf *conf, char *err, size_t errlen);
/** Zero and free everything; sets *P to NULL. Safe on NULL. */
void gpu_cuda_faces_destroy(struct gpu_cuda_faces **p);

#define GPU_CUDA_FACES_DESCRIPTORS 1u   /* also copy each face's descriptor to the host */

/**
 * Find, align and describe every face of NFRAMES frames (host frames are copied to the device;
 * device frames are read in place; the emulation takes host frames only). The faces of frame i
 * follow those of frame i-1 in FACES (at most MAX), as gpu_faces_run orders them; COUNTS[i] says
 * how many are frame i's. Descriptors are zero in FACES unless FLAGS has
 * GPU_CUDA_FACES_DESCRIPTORS. Synchronous; one caller at a time. Returns the number of faces, or
 * -EINVAL (a frame too large, a bad format, too many frames) or -EIO (gpu_cuda_last_error()).
 * What the batch left on the device stays there until gpu_cuda_faces_retire().
 */
int gpu_cuda_faces_run(struct gpu_cuda_faces *p, const struct gpu_cuda_frame *frames, int nframes,
		       unsigned flags, struct gpu_face *faces, int max, int *counts /* OUT: nframes */);

/**
 * The descriptors of the last run's faces IDX[0..N) (indices into its FACES), back to back (N x
 * 128 floats), in device memory (host memory in the emulation): the matcher's queries
 * (match_query_device). Valid until the next run or retire. NULL on -EINVAL or -EIO.
 */
const float *gpu_cuda_faces_queries(struct gpu_cuda_faces *p, const int *idx, int n);

/**
 * The same descriptors copied to host memory OUT (N x 128 floats): for a matcher that cannot
 * search on the device. Returns 0, -EINVAL or -EIO.
 */
int gpu_cuda_faces_descriptors(struct gpu_cuda_faces *p, const int *idx, int n, float *out /* OUT */);

/**
 * The evidence crop of the last run's frame FRAME: W x H RGB pixels (each side at most
 * GPU_CUDA_FACES_CROP_MAX) sampled every STEP (>= 1) pixels from (X, Y), into host memory RGB.
 * Returns 0, -EINVAL or -EIO.
 */
int gpu_cuda_faces_crop(struct gpu_cuda_faces *p, int frame, int x, int y, int w, int h, double step,
			uint8_t *rgb /* OUT: w * h * 3 */);

/** The batch retires: zero what it left on the device and in host scratch. 0 or -EIO. */
int gpu_cuda_faces_retire(struct gpu_cuda_faces *p);

void gpu_cuda_faces_stats_get(const struct gpu_cuda_faces *p, struct gpu_cuda_faces_stats *out /* OUT */);

/**
 * For tests of invariant 1: the bytes of every buffer a batch can touch (inputs, activations,
 * outputs, crops, descriptors, cuDNN's workspace, host scratch), weights aside, that are not zero
 * now: 0 after gpu_cuda_faces_retire(). Reads the device back (slow, allocates); UINT64_MAX if it
 * cannot.
 */
uint64_t gpu_cuda_faces_residue(struct gpu_cuda_faces *p);

/** The CUDA runtime's version (e.g. 13000 for 13.0) this backend was built with. */
int gpu_cuda_runtime_version(void);

#endif /* GPU_CUDA_H */
