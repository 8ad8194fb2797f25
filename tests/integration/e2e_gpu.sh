#!/bin/bash
# e2e_gpu.sh BUILD SRCROOT: vigild run --gpu, on make demo's recording (real camera frames through
# the whole appliance). Everywhere: a mode it does not know, or a CUDA mode where there is no GPU,
# is refused with one line before anything runs. Where a GPU is: each CUDA mode (exact, fp32 and
# fp16 cuDNN) finds the faces the CPU finds and raises exactly the CPU's alerts, with every pass on
# the GPU (no CPU fallback) and, in the fp32 modes, each alert's L2 within 1e-3 of the CPU's.
set -uo pipefail
BUILD=$(realpath "$1") ROOT=$(realpath "$2")
. "$ROOT/tests/integration/e2e_lib.sh"
e2e_need e2e_gpu setpriv
e2e_tmp
e2e_deployment "$tmp"

run() {   # run NAME [--gpu MODE]: the recording through the appliance, report in $tmp/NAME.json
	local name=$1
	shift
	"$vigild" run --pcap "$rec/camera.pcap" --sdp "$rec/camera.sdp" --until-eof --analysis-fps 10 \
		--report "$tmp/$name.json" --watchlist "$tmp/wl.vgw" --state-dir "$tmp/state" --deployment 1 "$@" \
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

if ! run probe --gpu cuda; then
	[ "$(wc -l <"$tmp/probe.err")" = 1 ] && grep -q -E "no CUDA device|without CUDA" "$tmp/probe.err" ||
		fail "--gpu cuda without a GPU: not one line saying so: $(cat "$tmp/probe.err")"
	e2e_done "e2e_gpu: no GPU here: --gpu refused with one line ($(cat "$tmp/probe.err")); the CUDA runs were not made"
	exit 0
fi
for mode in cuda-exact cuda cuda-fp16; do
	run "$mode" --gpu "$mode" || { fail "--gpu $mode failed: $(tail -1 "$tmp/$mode.err")"; continue; }
	[ "$(j "$mode" 'r.stages.analysis.nets')" = "\"$mode\"" ] || fail "$mode: the report names nets $(j "$mode" 'r.stages.analysis.nets')"
	[ "$(j "$mode" 'r.stages.analysis.nets_cpu_fallbacks')" = 0 ] || fail "$mode: passes fell back to the CPU"
	[ "$(j "$mode" 'r.alerts.map((a) => a.subject).sort().join()')" = "$cpu_alerts" ] ||
		fail "$mode: alerts $(j "$mode" 'r.alerts.map((a) => a.subject)'), the CPU's $cpu_alerts"
	faces_cpu=$(j cpu 'r.cameras[0].faces_detected') faces_gpu=$(j "$mode" 'r.cameras[0].faces_detected')
	drift=$(node -e 'const f = (p) => JSON.parse(require("fs").readFileSync(p, "utf8")).alerts;
		const a = f(process.argv[1]), b = f(process.argv[2]); let d = 0;
		for (const x of a) { const y = b.find((z) => z.subject === x.subject); d = Math.max(d, y ? Math.abs(x.value - y.value) : 9); }
		console.log(d.toExponential(2));' "$tmp/cpu.json" "$tmp/$mode.json")
	echo "$mode: $faces_gpu faces (CPU $faces_cpu), alerts $cpu_alerts, largest alert L2 change $drift"
	[ "$faces_gpu" = "$faces_cpu" ] || [ "$mode" = cuda-fp16 ] || fail "$mode: $faces_gpu faces, the CPU $faces_cpu"
	[ "$mode" = cuda-fp16 ] || node -e 'process.exit(+process.argv[1] <= 1e-3 ? 0 : 1)' "$drift" ||
		fail "$mode: alert distances moved by $drift"
done
e2e_done "e2e_gpu: the CUDA modes raise the CPU's alerts on the recording"
