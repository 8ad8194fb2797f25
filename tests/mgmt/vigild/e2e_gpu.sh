#!/bin/bash
# e2e_gpu.sh BUILD SRCROOT: vigild run --gpu, on make demo's recording (real camera frames through
# the whole appliance). Everywhere:
#   - a mode it does not know, or a CUDA mode where there is no GPU, is refused with one line
#     before anything runs;
#   - the GPU's code path itself, through its host emulation (--gpu emulate: the exact mode's very
#     kernels run on the CPU, slow), on the recording's last 6 s at one frame a second, in batches:
#     the faces the CPU finds, the CPU's alerts within L2 1e-3, matched where the descriptors are
#     (the emulated device), the evidence cut there, nothing falling back to the host.
# Where a GPU is: each CUDA mode (exact, fp32 and fp16 cuDNN) runs the whole recording, finds the
# faces the CPU finds and raises exactly the CPU's alerts with nothing falling back and, in the
# fp32 modes, each alert's L2 within 1e-3 of the CPU's.
set -uo pipefail
BUILD=$(realpath "$1") ROOT=$(realpath "$2")
. "$ROOT/tests/mgmt/vigild/e2e_lib.sh"
e2e_need e2e_gpu setpriv
e2e_tmp
e2e_deployment "$tmp"

run() {   # run NAME [--gpu MODE]: the recording through the appliance, report in $tmp/NAME.json
	local name=$1
	shift
	"$vigild" run --pcap "$rec/camera.pcap" --sdp "$rec/camera.sdp" --until-eof --analysis-fps 10 \
		--report "$tmp/$name.json" --state-dir "$tmp/state" --deployment 1 "$@" \
		2>"$tmp/$name.err"
}
j() { e2e_json "$tmp/$1.json" "$2"; }

run bogus --gpu bogus && fail "--gpu bogus was accepted"
[ "$(wc -l <"$tmp/bogus.err")" = 1 ] && grep -q -- "--gpu bogus" "$tmp/bogus.err" ||
	fail "--gpu bogus: not one line naming it: $(cat "$tmp/bogus.err")"
[ -e "$tmp/bogus.json" ] && fail "--gpu bogus wrote a report"

run cpu || fail "the CPU run failed: $(tail -1 "$tmp/cpu.err")"
[ "$(j cpu 'r.stages.analysis.nets')" = '"cpu"' ] || fail "the CPU run's report names nets $(j cpu 'r.stages.analysis.nets')"
cpu_alerts=$(j cpu 'r.alerts.map((a) => a.subject).sort().join()')
[ "$cpu_alerts" = '"subject-a,subject-b"' ] || fail "CPU alerts $cpu_alerts"

# the GPU's path, emulated, against the CPU on the same frames
node "$ROOT/tests/mgmt/vigild/pcap-tool.js" from "$rec/camera.pcap" "$tmp/tail.pcap" 14
tail_run() {   # tail_run NAME [--gpu MODE ...]: the last 6 s at 1 fps
	local name=$1
	shift
	"$vigild" run --pcap "$tmp/tail.pcap" --sdp "$rec/camera.sdp" --until-eof --analysis-fps 1 \
		--report "$tmp/$name.json" --state-dir "$tmp/state" --deployment 1 "$@" \
		2>"$tmp/$name.err"
}
alerts_l2_drift() {   # the largest change of an alert's L2 between two reports, alert by alert in
		     # order (9: the alerts differ in number, subject or frame)
	node -e 'const f = (p) => JSON.parse(require("fs").readFileSync(p, "utf8")).alerts;
		const a = f(process.argv[1]), b = f(process.argv[2]); let d = a.length === b.length ? 0 : 9;
		a.forEach((x, i) => { const y = b[i];
			d = Math.max(d, y && y.subject === x.subject && y.pts === x.pts ? Math.abs(x.value - y.value) : 9); });
		console.log(d.toExponential(2));' "$1" "$2"
}
tail_run tail-cpu || fail "the CPU run on the tail failed: $(tail -1 "$tmp/tail-cpu.err")"
tail_run tail-emu --gpu emulate --batch 4 || fail "--gpu emulate failed: $(tail -1 "$tmp/tail-emu.err")"
# at one frame a second a passer-by's track breaks between frames: subject-b alerts once a track
tail_alerts=$(j tail-cpu '[...new Set(r.alerts.map((a) => a.subject))].sort().join()')
[ "$tail_alerts" = '"subject-b"' ] || fail "the tail's CPU alerts are $tail_alerts, not subject-b"
[ "$(j tail-emu 'r.alerts.length')" = "$(j tail-cpu 'r.alerts.length')" ] ||
	fail "emulated GPU alerts $(j tail-emu 'r.alerts.map((a) => a.subject)'), the CPU's $(j tail-cpu 'r.alerts.map((a) => a.subject)')"
for k in faces_detected faces_gated faces_matched frames_analysed; do
	[ "$(j tail-emu "r.cameras[0].$k")" = "$(j tail-cpu "r.cameras[0].$k")" ] ||
		fail "emulated GPU $k $(j tail-emu "r.cameras[0].$k"), the CPU's $(j tail-cpu "r.cameras[0].$k")"
done
drift=$(alerts_l2_drift "$tmp/tail-cpu.json" "$tmp/tail-emu.json")
node -e 'process.exit(+process.argv[1] <= 1e-3 ? 0 : 1)' "$drift" || fail "emulated GPU: alert distances moved by $drift"
a='r.stages.analysis'
[ "$(j tail-emu "$a.nets")" = '"emulate"' ] || fail "the emulated run's report names nets $(j tail-emu "$a.nets")"
[ "$(j tail-emu "$a.matcher.where")" = '"gpu"' ] || fail "the matcher ran on $(j tail-emu "$a.matcher.where")"
[ "$(j tail-emu "$a.matcher.device_queries > 0 && $a.matcher.host_fallbacks === 0")" = true ] ||
	fail "matcher: $(j tail-emu "$a.matcher")"
[ "$(j tail-emu "$a.gpu.faces === r.cameras[0].faces_detected && $a.gpu.frames === 6 && $a.batch.largest > 1")" = true ] ||
	fail "gpu: $(j tail-emu "$a.gpu"), batch $(j tail-emu "$a.batch")"
[ "$(j tail-emu "$a.nets_errors")" = 0 ] || fail "emulated GPU: $(j tail-emu "$a.nets_errors") batches failed"
[ "$(j tail-emu 'r.alerts.every((x) => x.evidence !== null)')" = true ] || fail "an emulated GPU alert has no evidence"
echo "emulate: $(j tail-emu "r.cameras[0].faces_detected") faces in $(j tail-emu "$a.batch.batches") batches," \
	"$(j tail-emu 'r.alerts.length') alerts of $tail_alerts, largest alert L2 change $drift, $(j tail-emu "$a.matcher.device_queries") faces matched on the device"

if ! run probe --gpu cuda; then
	[ "$(wc -l <"$tmp/probe.err")" = 1 ] && grep -q -E "no CUDA device|without CUDA" "$tmp/probe.err" ||
		fail "--gpu cuda without a GPU: not one line saying so: $(cat "$tmp/probe.err")"
	e2e_done "e2e_gpu: no GPU here: --gpu refused with one line ($(cat "$tmp/probe.err")); the CUDA runs were not made"
	exit 0
fi
for mode in cuda-exact cuda cuda-fp16; do
	run "$mode" --gpu "$mode" || { fail "--gpu $mode failed: $(tail -1 "$tmp/$mode.err")"; continue; }
	[ "$(j "$mode" 'r.stages.analysis.nets')" = "\"$mode\"" ] || fail "$mode: the report names nets $(j "$mode" 'r.stages.analysis.nets')"
	[ "$(j "$mode" 'r.stages.analysis.nets_errors')" = 0 ] || fail "$mode: batches failed on the GPU"
	[ "$(j "$mode" 'r.stages.analysis.matcher.where')" = '"gpu"' ] || fail "$mode: the matcher ran on the host"
	[ "$(j "$mode" 'r.stages.analysis.matcher.host_fallbacks')" = 0 ] || fail "$mode: faces matched on the host"
	echo "$mode: gpu $(j "$mode" 'r.stages.analysis.gpu'), batch $(j "$mode" 'r.stages.analysis.batch')"
	[ "$(j "$mode" 'r.alerts.map((a) => a.subject).sort().join()')" = "$cpu_alerts" ] ||
		fail "$mode: alerts $(j "$mode" 'r.alerts.map((a) => a.subject)'), the CPU's $cpu_alerts"
	faces_cpu=$(j cpu 'r.cameras[0].faces_detected') faces_gpu=$(j "$mode" 'r.cameras[0].faces_detected')
	drift=$(alerts_l2_drift "$tmp/cpu.json" "$tmp/$mode.json")
	echo "$mode: $faces_gpu faces (CPU $faces_cpu), alerts $cpu_alerts, largest alert L2 change $drift"
	[ "$faces_gpu" = "$faces_cpu" ] || [ "$mode" = cuda-fp16 ] || fail "$mode: $faces_gpu faces, the CPU $faces_cpu"
	[ "$mode" = cuda-fp16 ] || node -e 'process.exit(+process.argv[1] <= 1e-3 ? 0 : 1)' "$drift" ||
		fail "$mode: alert distances moved by $drift"
done
e2e_done "e2e_gpu: the CUDA modes raise the CPU's alerts on the recording"
