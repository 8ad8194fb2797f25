#!/bin/bash
# e2e_decode.sh BUILD SRCROOT [gpu]: vigild run --decode over make demo's recording.
# Everywhere (integration suite): --decode cuda gives the frames --decode cpu gives, its --framemd5
# byte for byte the same, and both are ffmpeg's own (-f framemd5 of the recorded stream); where
# NVDEC cannot start (no GPU, no driver: CI) the camera is decoded in software, report.json says
# why, stderr has one line saying it, and the run succeeds; --decode with a value it does not know
# is refused with one line before anything runs.
# With "gpu" (the gpu suite; exit 77 where nvidia-smi lists no GPU): --decode cuda decodes every
# frame on the device with no fallback, the same frames, and the analysis, fed device frames
# through vigild run's download glue, analyses the frames the CPU run analyses and finds its faces.
set -uo pipefail
BUILD=$(realpath "$1") ROOT=$(realpath "$2") MODE=${3:-}
. "$ROOT/tests/mgmt/vigild/e2e_lib.sh"
if [ "$MODE" = gpu ] && ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
	echo "e2e_decode_gpu: no CUDA device here (nvidia-smi -L lists none)"
	exit 77
fi
e2e_need e2e_decode
e2e_tmp

run() {   # run NAME ARGS...: the recording decoded (no analysis unless --models); $tmp/NAME.{json,md5,err}
	local name=$1
	shift
	VIGIL_MODELS= "$vigild" run --pcap "$rec/camera.pcap" --sdp "$rec/camera.sdp" --until-eof --report "$tmp/$name.json" \
		--framemd5 "$tmp/$name.md5" "$@" 2>"$tmp/$name.err"
}
j() { e2e_json "$tmp/$1.json" "$2"; }
frames() { grep -v '^#' "$1" | awk -F', *' '{print $5, $6}'; }   # size and hash of each frame

run cpu --decode cpu || fail "--decode cpu failed: $(tail -1 "$tmp/cpu.err")"
n=$(j cpu 'r.cameras[0].frames_decoded')
[ "$n" = 200 ] || fail "--decode cpu decoded $n frames, the recording has 200"
[ "$(j cpu '[r.cameras[0].decoder, r.cameras[0].decode_fallback, r.cameras[0].frames_on_device]')" = '["cpu",null,0]' ] ||
	fail "--decode cpu's report: $(j cpu '[r.cameras[0].decoder, r.cameras[0].decode_fallback, r.cameras[0].frames_on_device]')"
ffmpeg -v error -i "$rec/camera.h264" -f framemd5 "$tmp/ffmpeg.md5" || fail "ffmpeg -f framemd5"
cmp -s <(frames "$tmp/cpu.md5") <(frames "$tmp/ffmpeg.md5") || fail "--decode cpu's frames differ from ffmpeg's"

if [ "$MODE" != gpu ]; then
	run bogus --decode bogus && fail "--decode bogus was accepted"
	[ "$(wc -l <"$tmp/bogus.err")" = 1 ] && grep -q -- "--decode value 'bogus'" "$tmp/bogus.err" ||
		fail "--decode bogus: not one line naming it: $(cat "$tmp/bogus.err")"
	[ -e "$tmp/bogus.json" ] && fail "--decode bogus wrote a report"

	# On a decode worker thread, as a live run decodes.
	run cuda --decode cuda --decode-workers 1 || fail "--decode cuda failed: $(tail -1 "$tmp/cuda.err")"
	cmp -s "$tmp/cpu.md5" "$tmp/cuda.md5" || fail "--decode cuda's framemd5 differs from --decode cpu's"
	decoder=$(j cuda 'r.cameras[0].decoder') why=$(j cuda 'r.cameras[0].decode_fallback')
	if [ "$decoder" = '"cpu"' ]; then
		[ "$why" != null ] && [ "$why" != '""' ] || fail "fell back to software without a reason: $why"
		[ "$(j cuda '[r.cameras[0].frames_on_device, r.stages.decode.fallbacks]')" = '[0,1]' ] ||
			fail "fallback counts: $(j cuda '[r.cameras[0].frames_on_device, r.stages.decode.fallbacks]')"
		[ "$(wc -l <"$tmp/cuda.err")" = 1 ] && grep -qF "${why//\"/}" "$tmp/cuda.err" ||
			fail "the fallback is not one line with its reason on stderr: $(cat "$tmp/cuda.err")"
		e2e_done "e2e_decode: no NVDEC here, software instead ($why); frames identical to --decode cpu and ffmpeg; --decode bogus refused"
	else
		[ "$(j cuda 'r.cameras[0].frames_on_device')" = "$n" ] || fail "NVDEC: $(j cuda 'r.cameras[0].frames_on_device') of $n frames on the device"
		e2e_done "e2e_decode: NVDEC decoded the recording; frames identical to --decode cpu and ffmpeg; --decode bogus refused"
	fi
	exit 0
fi

run cuda --decode cuda || fail "--decode cuda failed: $(tail -1 "$tmp/cuda.err")"
[ "$(j cuda '[r.cameras[0].decoder, r.cameras[0].decode_fallback, r.cameras[0].frames_on_device, r.cameras[0].decode_hw_errors]')" = "[\"nvdec\",null,$n,0]" ] ||
	fail "not every frame on NVDEC: $(j cuda 'r.cameras[0]')"
cmp -s "$tmp/cpu.md5" "$tmp/cuda.md5" || fail "NVDEC's framemd5 differs from the software decoder's"
[ -s "$tmp/cuda.err" ] && fail "--decode cuda printed: $(cat "$tmp/cuda.err")"
# The analysis takes NVDEC's frames through the download glue: the same frames analysed, the same
# faces found give or take the last bit of NV12-versus-yuv420p colour conversion.
run acpu --decode cpu --models "$VIGIL_MODELS" --analysis-fps 2 || fail "analysis on the CPU decoder's frames: $(tail -1 "$tmp/acpu.err")"
run acuda --decode cuda --models "$VIGIL_MODELS" --analysis-fps 2 || fail "analysis on NVDEC's frames: $(tail -1 "$tmp/acuda.err")"
fc=$(j acpu 'r.cameras[0].faces_detected') fg=$(j acuda 'r.cameras[0].faces_detected')
[ "$(j acuda 'r.cameras[0].frames_analysed')" = "$(j acpu 'r.cameras[0].frames_analysed')" ] ||
	fail "frames analysed: NVDEC $(j acuda 'r.cameras[0].frames_analysed'), CPU $(j acpu 'r.cameras[0].frames_analysed')"
[ "$(j acuda 'r.stages.decode.download_errors')" = 0 ] || fail "device frames that could not be downloaded"
node -e 'const c = +process.argv[1], g = +process.argv[2]; process.exit(c > 0 && Math.abs(g - c) <= c / 10 ? 0 : 1)' "$fc" "$fg" ||
	fail "faces detected: NVDEC's frames $fg, the CPU decoder's $fc"
e2e_done "e2e_decode_gpu: NVDEC decoded all $n frames on the device, framemd5 identical to software; analysis $fg faces (CPU $fc)"
