#!/bin/bash
# cuda_faces.sh TEST ROOT DEVICE: the CUDA face pipeline's check (test_cuda_faces) on make demo's
# camera recording, made here first if it is missing (tools/make-demo-recording). DEVICE -1: the
# host emulation (CI); 0: the GPU (skips with 77 where there is none).
set -u
test=$1 root=$2 device=$3
rec=$root/fetched/demo-recording
# no GPU: skip before making anything
[ "$device" -lt 0 ] || "$test" --has-device "$device" || exit 77
if ! "$root/tools/make-demo-recording" "$rec" >/dev/null 2>&1; then
	echo "cuda_faces: no demo recording (fetched photos, ffmpeg, gst-launch-1.0): run tools/bootstrap"
	[ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ] && exit 1 || exit 77
fi
exec "$test" "$root" "$rec/camera.h264" "$device"
