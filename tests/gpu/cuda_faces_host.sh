#!/bin/bash
# cuda_faces_host.sh TEST ROOT: the CUDA face pipeline's host check (test_cuda_faces_host) on
# make demo's camera recording, made here first if it is missing (tools/make-demo-recording).
set -u
test=$1 root=$2
rec=$root/fetched/demo-recording
if ! "$root/tools/make-demo-recording" "$rec" >/dev/null 2>&1; then
	echo "cuda_faces_host: no demo recording (fetched photos, ffmpeg, gst-launch-1.0): run tools/bootstrap"
	[ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ] && exit 1 || exit 77
fi
exec "$test" "$root" "$rec/camera.h264"
