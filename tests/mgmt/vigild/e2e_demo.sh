#!/bin/bash
# e2e_demo.sh BUILD SRCROOT [RUN OPTIONS]: the appliance end to end (with VIGIL_DEMO_MODELS and
# VIGIL_DEMO_THRESHOLD: on another model, an ONNX one, at a threshold in its metric), as `make demo` runs it (tools/demo): a camera
# recording of 22 people, two of them on the watchlist, through vigild. It proves what users rely on:
#   - exactly the watchlisted people alert, each once (one track, one alert), with evidence saved;
#   - everyone else is scanned and forgotten: nothing under the appliance's state directory holds a
#     JPEG, a descriptor or the subjects' names in the clear (the evidence is encrypted), nor does
#     anything written under /tmp during the run, and vigild is undumpable;
#   - the run was authorised and audited, each alert was reviewed by a person, the deployment's
#     public record counts them, and the audit chain verifies.
set -uo pipefail
build=$(realpath "$1") root=$(realpath "$2")
fetched=$root/fetched/face-api-1.7.15
if [ ! -d "$fetched/model" ] || ! command -v gst-launch-1.0 >/dev/null || ! command -v ffmpeg >/dev/null; then
	echo "e2e_demo: missing fetched weights or GStreamer/ffmpeg: run tools/bootstrap"
	[ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ] && exit 1 || exit 77
fi
[ -x "$build/vigild" ] && [ -x "$build/vigilctl" ] || { echo "e2e_demo: vigild/vigilctl not built"; exit 77; }
if [ -n "${VIGIL_DEMO_MODELS:-}" ] && [ ! -f "$VIGIL_DEMO_MODELS/vigil-model.json" ]; then
	echo "e2e_demo: no model folder at $VIGIL_DEMO_MODELS (tools/bootstrap fetches it)"
	[ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ] && exit 1 || exit 77
fi
out=$(mktemp)
marker=$(mktemp)
trap 'rm -f "$out" "$marker"' EXIT
# RUN OPTIONS (e.g. --track-fusion 3) change how the run matches, never what it must find.
"$root/tools/demo" "$build" "${@:3}" >"$out" 2>&1
rc=$?
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
[ $rc = 0 ] || fail "tools/demo exited $rc: $(tail -5 "$out")"
state=$build/demo-state
report=$state/report.json
[ -s "$report" ] || { fail "no report"; exit 1; }
# The report, read by node (present wherever set-up ran).
node - "$report" >"$out.checks" <<'JS'
const r = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const subjects = r.alerts.map((a) => a.subject).sort();
const out = [];
out.push(`alerts ${JSON.stringify(subjects)}`);
out.push(`saved ${r.alerts.every((a) => a.evidence && a.evidence.startsWith('store:'))}`);
// within the watchlist's threshold: an L2 distance under 0.5, or a cosine similarity at least the
// threshold an ONNX model's run was given (VIGIL_DEMO_THRESHOLD)
const within = (a) => /^l2(-track)?$/.test(a.metric) ? a.value < 0.5
	: /^cosine(-track)?$/.test(a.metric) && a.value >= Number(process.env.VIGIL_DEMO_THRESHOLD);
out.push(`values ${r.alerts.every(within)}`);
out.push(`fusion ${r.stages.analysis.track_fusion} ${r.stages.analysis.fused_matches}`);
out.push(`scanned ${r.totals.faces_scanned}`);
out.push(`tracks ${r.cameras[0].tracks}`);
out.push(`frames ${r.cameras[0].frames_decoded}`);
const pv = r.privacy || {};
out.push(`pools ${pv.undumpable} ${pv.biometric_pools} ${pv.pools_dontdump}`);
console.log(out.join('\n'));
JS
cat "$out.checks"
grep -qx 'alerts \["subject-a","subject-b"\]' "$out.checks" || fail "the alerts are not exactly subject-a and subject-b, once each"
grep -qx 'saved true' "$out.checks" || fail "an alert's evidence was not saved"
grep -qx 'values true' "$out.checks" || fail "an alert above the watchlist's threshold"
scanned=$(awk '$1 == "scanned" { print $2 }' "$out.checks")
[ "${scanned:-0}" -ge 500 ] || fail "only ${scanned:-0} faces scanned: the others were not analysed"
tracks=$(awk '$1 == "tracks" { print $2 }' "$out.checks")
[ "${tracks:-0}" -ge 20 ] && [ "${tracks:-0}" -le 40 ] || fail "$tracks tracks for 22 people crossing"
grep -q "audit log intact" "$out" || fail "the audit log did not verify"
# With --track-fusion N the run says so, and the templates' pool is one more no-dump pool.
want_fusion=0
[ "${3:-}" = --track-fusion ] && want_fusion=$4
read -r _ fusion fused < <(grep '^fusion ' "$out.checks")
[ "$fusion" = "$want_fusion" ] || fail "the report's track_fusion is $fusion, not $want_fusion"
echo "track fusion $fusion: $fused sightings matched only through their track's template"
# The kernel's view of the run's memory: undumpable, and every frame and crop pool marked no-dump.
read -r _ undumpable pools dontdump < <(grep '^pools ' "$out.checks")
[ "$undumpable" = true ] || fail "vigild run was dumpable"
[ "${pools:-0}" -ge 2 ] && [ "$dontdump" = "$pools" ] || fail "$dontdump of ${pools:-0} biometric pools are no-dump in /proc/self/smaps"
grep -Eq "faces scanned [0-9]{3,}, alerts 2: 2 confirmed, 0 rejected \(false alerts\), 0 unreviewed" "$out" ||
	fail "the deployment's public record is not 2 alerts, both confirmed: $(grep 'faces scanned' "$out")"
grep -q "the requester may not authorise it" "$out" || fail "the requester was not refused"
# Privacy: no JPEG in the clear anywhere under the state directory, and nothing readable in the
# evidence store (encrypted: not even the matched subjects' ids, which the database keeps for review).
leaks=$(find "$state/state" -type f -print0 | xargs -0 grep -l -a -P '\xff\xd8\xff' 2>/dev/null || true)
[ -z "$leaks" ] || fail "face images in the clear: $leaks"
leaks=$(find "$state/state/evidence" -type f -print0 | xargs -0 grep -l -a -E 'subject-a|subject-b|cam1' 2>/dev/null || true)
[ -z "$leaks" ] || fail "alert details in the clear in the evidence store: $leaks"
ls "$state/state/evidence"/*/ >/dev/null 2>&1 || fail "no evidence segments"
# Nor anywhere in /tmp: no file written during the run holds a face image (this test runs alone).
# (The source tree is left out: a clone under /tmp holds the demo's own watchlist and enrolment
# photos, which are meant to be there, in build/ and fetched/.)
tmp_leaks=$(find /tmp -xdev -type f -newer "$marker" ! -path "$out*" ! -path "$root/*" -size +1k -print0 2>/dev/null |
	xargs -0 -r grep -l -a -P '\xff\xd8\xff' 2>/dev/null || true)
[ -z "$tmp_leaks" ] || fail "face images written under /tmp during the run: $tmp_leaks"
# Nor any descriptor, found by its shape (descriptor-scan.js), in the state directory, the report,
# the run's output or the files written under /tmp during the run. The scanner is first shown to
# find real ones: the model's descriptors of a photo, written as the float32 bytes they are.
scan=$root/tests/mgmt/vigild/descriptor-scan.js
"$build/vigilctl" faces --json --models "$fetched/model" "$fetched/demo/sample2.jpg" | node -e '
	const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
	const d = j.images[0].faces[0].descriptor, b = Buffer.alloc(4096 + 512);
	require("crypto").randomFillSync(b);
	d.forEach((v, i) => b.writeFloatLE(v, 1001 + 4 * i));
	require("fs").writeFileSync(process.argv[1], b);' "$out.control"
node "$scan" "$out.control" >/dev/null && fail "descriptor-scan.js does not find a real descriptor"
found=$( { find "$state/state" "$report" -type f; find /tmp -xdev -type f -newer "$marker" ! -path "$out*" ! -path "$root/*" -size +511c 2>/dev/null; } |
	tr '\n' '\0' | xargs -0 -r node "$scan"; node "$scan" "$out" )
[ -z "$found" ] || fail "descriptors left behind: $found"
rm -f "$out.control"
# And the appliance's own output (its logs) names no one but the alerted subjects.
grep -E -q 'descriptor|[0-9]\.[0-9]{6},' "$out" && fail "the run's output carries descriptor values"
rm -f "$out.checks"
[ $fails = 0 ] && echo "e2e_demo: 2 alerts, exactly the watchlisted people; $scanned faces scanned; nothing in the clear" || exit 1
