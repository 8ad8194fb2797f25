/**
 * @file gpu.h
 * Vigil's inference stage, CPU backend: face-api.js's face nets in C (SSD MobileNetV1 detector
 * at 512, 68-point landmarks, dlib-style alignment, 128-d ResNet descriptor), equal to
 * face-api.js under tfjs on the same pixels (../shared/face-nets.md gives every layer).
 *
 * Invariants:
 * - The weights come from the face-api npm package's manifests and .bin files; every tensor is
 *   checked by name and shape when the model opens, so a missing, short or corrupt file is a
 *   one-line error at open and never a wrong result later.
 * - The exact mode reproduces face-api's own quirks (floored crops, the landmark shift by the
 *   unfloored box, the alignment rectangle), so results match the oracle within float rounding:
 *   boxes and landmarks within 0.5 px, descriptors within L2 1e-3 (tests/gpu).
 * - A model runs on one thread at a time (it owns its scratch tensors; gpu_faces_run never
 *   allocates); open one model per inference thread.
 * - Everything written into a gpu_face is biometric: the caller zeroes it when it retires the
 *   batch (gpu_faces_retire()).
 */
#ifndef GPU_H
#define GPU_H

#include <stddef.h>
#include <stdint.h>

#define GPU_LANDMARKS 68
#define GPU_DESCRIPTOR_DIM 128     /* the built-in (face-api) model's descriptor */
#define GPU_DESCRIPTOR_MAX 512     /* the longest descriptor any model may have (an ONNX model's) */
#define GPU_MAX_FACES 100           /* face-api's maxResults for the SSD detector */
#define GPU_MATCH_THRESHOLD 0.6     /* L2 distance under which two descriptors are one person */

struct gpu_model;

/** Quality figures per face, for the pipeline to gate on before matching. */
struct gpu_quality {
	double interocular_px;   /**< distance between the eye centres, image pixels */
	double sharpness;        /**< variance of the Laplacian of the aligned crop's grey levels */
	double yaw_deg;          /**< from the nose's offset between the eyes; + = turned to image right */
};

/** One face: detection box, landmarks and descriptor, all in image pixels. */
struct gpu_face {
	double box[4];                           /**< x, y, width, height */
	double score;                            /**< detector confidence, 0..1 */
	double landmarks[GPU_LANDMARKS][2];      /**< x, y */
	double align[4];                         /**< the aligned crop fed to the descriptor: x, y, w, h */
	float descriptor[GPU_DESCRIPTOR_MAX];    /**< the model's descriptor_dim values (gpu_model_info),
						      the rest zero; the built-in model's 128 compare by
						      Euclidean distance */
	struct gpu_quality quality;
};

/**
 * Open the three nets from DIR, a model folder of one of two kinds:
 *
 * - a face-api `model` folder (ssd_mobilenetv1_model, face_landmark_68_model,
 *   face_recognition_model manifests and .bin files): the built-in model;
 * - an ONNX model folder: a `vigil-model.json` manifest beside the ONNX file it names. Its net
 *   replaces the descriptor net; the detector and landmark nets stay face-api's, taken from the
 *   face-api folder the manifest's optional "detector" names (a path, relative to DIR unless it
 *   starts with '/'; default "../face-api-1.7.15/model", the layout tools/bootstrap fetches), so
 *   that crops and alignment are exactly the built-in model's. The manifest:
 *     {"id": "1..31 of A-Z a-z 0-9 . _ : + - (written into watchlist files; not face-api...)",
 *      "onnx": "FILE beside the manifest", "sha256": "of FILE, checked before it is parsed",
 *      "input": {"width": W, "height": W, "mean": [3], "std": [3], "channel_order": "rgb"|"bgr"},
 *      "descriptor_dim": 1..512 (must be the net's output), "metric": "l2"|"cosine",
 *      "threshold": the default match threshold, "detector": "FACE-API FOLDER" (optional)}
 *   The net sees the aligned crop resampled to W x W as face-api resamples it (toBatchTensor),
 *   then (x - mean[c]) / std[c] per channel in the net's channel order (mean and std listed in
 *   that order). Unknown keys are refused. The net runs on the CPU backend only (oneDNN, or the
 *   reference kernels); gpu/cuda refuses such a model with -ENOTSUP.
 *
 * Returns 0; -ENOENT / -EBADMSG / -EINVAL / -ENOTSUP / -ENOMEM with one line in ERR (which file,
 * which key or ONNX node, what is wrong). *OUT is untouched on error.
 */
int gpu_model_open(struct gpu_model **out, const char *dir, char *err, size_t errlen);

/**
 * What a model is, for everything that must not mix two models: the id written into watchlist
 * files (so a watchlist's seal covers the model it was enrolled with), the digest a calibration
 * is bound to, and the descriptor's size, metric and default threshold.
 */
struct gpu_model_info {
	char id[32];            /**< 1..31 bytes: "face-api-1.7.15" for the pinned face-api weights,
				     else "face-api:" and the digest's first 16 hex digits */
	char digest[65];        /**< sha256 (hex) over the nets' manifests and weights, in a fixed order */
	unsigned descriptor_dim;
	int metric;             /**< 0: L2 distance (smaller is closer); 1: cosine distance */
	double threshold;       /**< the model's default match threshold, in its metric */
};

/**
 * Identify the model in DIR without building its nets (reads and checks the weight files):
 * fills INFO. 0, or gpu_model_open's errors with one line in ERR.
 */
int gpu_model_identify(const char *dir, struct gpu_model_info *info, char *err, size_t errlen);

/** The identity of an open model (the same as gpu_model_identify on its folder). */
const struct gpu_model_info *gpu_model_info_of(const struct gpu_model *model);

/** Which kernels run the convolutions. */
enum gpu_backend {
	GPU_BACKEND_ONEDNN = 0,   /**< oneDNN, fp32, scale layers folded (the default) */
	GPU_BACKEND_REFERENCE,    /**< the plain C reference kernels, op by op as tfjs rounds */
	GPU_BACKEND_ONEDNN_BF16,  /**< fast mode: the descriptor net on oneDNN in bf16 (detector and
				       landmarks stay fp32, so crops are exact); descriptors drift
				       from face-api's (measured in tests/gpu/test_bf16.c) */
};

/**
 * Switch backends (ONEDNN and REFERENCE give results equal to face-api.js within the
 * tolerances above).
 * Switching to oneDNN builds every primitive then (a warm-up pass: the detector, the landmark
 * net and the descriptor net at each batch size, ~0.5 s); -EIO if oneDNN could not build them
 * all (the reference kernels then serve those layers: slower, same results); for
 * GPU_BACKEND_ONEDNN_BF16, -ENOTSUP where the CPU has no bf16 kernels (the model stays fp32).
 */
int gpu_model_set_backend(struct gpu_model *model, enum gpu_backend backend);

/**
 * Forward passes that another backend (gpu/cuda's gpu_cuda_nets_attach) failed since open, each
 * of which the CPU then ran instead: results stay right, only slower. 0 when none is attached.
 */
unsigned long gpu_model_offload_failures(const struct gpu_model *model);

/** Free the model; sets *MODEL to NULL. Safe on NULL. */
void gpu_model_close(struct gpu_model **model);

/**
 * Find, align and describe every face in an 8-bit packed RGB image (W x H, rows top to bottom,
 * no padding): SSD at minConfidence 0.5, at most MAX faces (and GPU_MAX_FACES), in detector
 * score order. Returns the number of faces written to FACES, or -EINVAL (bad size or
 * arguments). Never allocates.
 */
int gpu_faces_run(struct gpu_model *model, const uint8_t *rgb, uint32_t width, uint32_t height,
		  struct gpu_face *faces, int max);

/**
 * gpu_faces_run for camera frames with small faces: besides the whole frame downscaled to 512
 * (large faces), the SSD runs on native-resolution 512x512 tiles overlapping by OVERLAP pixels
 * (0..448; 192 covers faces up to the whole-frame pass's smallest anchor, ~51 px of 512), and
 * all boxes are merged by one NMS (IoU 0.5). A box cut by a tile edge inside the frame is left
 * to the tile holding that face whole. A frame with a side of 512 or less runs as
 * gpu_faces_run. Costs one SSD pass per tile: 18 + 1 for 1080p at overlap 192. Measured
 * (tests/gpu/test_tiled.c, one photo's 3 faces): found and matched down to 42 px high,
 * where the whole-frame pass alone finds none of them.
 * Returns the number of faces or -EINVAL.
 */
int gpu_faces_run_tiled(struct gpu_model *model, const uint8_t *rgb, uint32_t width,
			uint32_t height, int overlap, struct gpu_face *faces, int max);

/**
 * gpu_faces_run with face-api's tiny face detector (TinyFaceDetectorOptions: input 416, score
 * 0.5, NMS IoU 0.4) in place of the SSD: ~12x fewer operations, fewer small faces. Returns the
 * number of faces, -ENOENT when the model folder had no tiny_face_detector_model, -EINVAL.
 */
int gpu_faces_run_tiny(struct gpu_model *model, const uint8_t *rgb, uint32_t width,
		       uint32_t height, struct gpu_face *faces, int max);

/**
 * Detection only (box and score of each face, the rest zeroed): the SSD pass of gpu_faces_run.
 * Returns the number of faces or -EINVAL.
 */
int gpu_faces_detect(struct gpu_model *model, const uint8_t *rgb, uint32_t width, uint32_t height,
		     struct gpu_face *faces, int max);

/**
 * Descriptors for N faces whose landmarks are already known (FACES[i].landmarks in image pixels
 * of RGB): align each, then run the recognition net on the crops in batches of up to 8 (one
 * oneDNN batch each; gpu_faces_run batches an image's faces the same way); fills descriptor,
 * align and quality. A face whose aligned crop is empty gets a zero descriptor. Returns N or
 * -EINVAL.
 */
int gpu_faces_describe(struct gpu_model *model, const uint8_t *rgb, uint32_t width,
		       uint32_t height, struct gpu_face *faces, int n);

/**
 * A camera's decoded 4:2:0 frame (8-bit, BT.601 limited range: what H.264 and H.265 cameras send)
 * to packed RGB, W x H into RGB: luma Y (pitch YP), chroma U and V planes (I420, pitch UVP) or,
 * with V NULL, interleaved UV (NV12). Each pixel takes its 2x2 block's chroma, in 8.8 fixed point:
 * exactly the pixels the CUDA backend reads from the same planes, so that both backends see one
 * frame alike. Returns 0 or -EINVAL.
 */
int gpu_yuv420_to_rgb(const uint8_t *y, int yp, const uint8_t *u, const uint8_t *v, int uvp, uint32_t w, uint32_t h,
		      uint8_t *rgb);

/** Zero N faces (boxes, landmarks, descriptors) when their batch retires: DESIGN.md invariant 1. */
void gpu_faces_retire(struct gpu_face *faces, int n);

/**
 * Euclidean distance between two descriptors of the built-in model (its 128 values, its metric,
 * threshold 0.6). Another model's descriptors compare by its gpu_model_info: metric over
 * descriptor_dim values.
 */
double gpu_descriptor_distance(const float *a, const float *b);

#endif /* GPU_H */
