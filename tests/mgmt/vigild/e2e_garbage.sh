#!/bin/bash
# e2e_garbage.sh BUILD SRCROOT: garbage in a camera's capture (DESIGN.md invariant 6) does not stop
# the run or change what it finds. One bad packet after every 25th of make demo's recording (cut
# frames, bad IP headers, broken RTP, a payload type the camera never sends, strangers' ports, ARP,
# IP fragments): each is counted exactly where a user would look for it, the video decodes as
# cleanly as before, and the alerts are exactly the watchlisted people's, as on the clean capture.
set -uo pipefail
BUILD=$(realpath "$1") ROOT=$(realpath "$2")
. "$ROOT/tests/mgmt/vigild/e2e_lib.sh"
e2e_need e2e_garbage setpriv
e2e_tmp
e2e_deployment "$tmp"

injected=$(node "$ROOT/tests/mgmt/vigild/pcap-tool.js" garbage "$rec/camera.pcap" "$tmp/garbage.pcap" 25) || fail "pcap-tool"
echo "injected: $injected"
"$vigild" run --pcap "$tmp/garbage.pcap" --sdp "$rec/camera.sdp" --until-eof --analysis-fps 10 \
	--report "$tmp/report.json" --state-dir "$tmp/state" --deployment 1 2>"$tmp/run.err" ||
	fail "the run over garbage failed: $(tail -1 "$tmp/run.err")"
[ -s "$tmp/report.json" ] || { fail "no report"; e2e_done; }
j() { e2e_json "$tmp/report.json" "$1"; }
counted=$(j '({rx_malformed: r.stages.rx.malformed, not_udp: r.stages.rx.not_udp, ip_fragments: r.stages.rx.ip_fragments,
	      unknown_flow: r.stages.rx.unknown_flow, rtp_malformed: r.cameras[0].rtp_malformed})')
echo "counted:  $counted"
[ "$counted" = "$injected" ] || fail "the bad packets were not each counted once, where they belong"
[ "$(j 'r.cameras[0].frames_decoded')" = 200 ] || fail "$(j 'r.cameras[0].frames_decoded') of 200 frames decoded"
[ "$(j 'r.cameras[0].frames_corrupt')" = 0 ] || fail "garbage corrupted $(j 'r.cameras[0].frames_corrupt') frames"
[ "$(j 'r.cameras[0].rtp_lost')" = 0 ] || fail "garbage made the camera's own packets count as lost"
[ "$(j 'r.alerts.map((a) => a.subject).sort().join()')" = '"subject-a,subject-b"' ] ||
	fail "alerts $(j 'r.alerts.map((a) => a.subject)'), not exactly subject-a and subject-b"
# The authorisation binds the watchlist (invariant 2): a watchlist file of the attacker's is not
# matched with, a custody file altered behind vigild is not either, and both refusals are audited.
python3 "$ROOT/tests/mgmt/make_watchlist.py" "$tmp/other.vgw" 1 0.9 3
if "$vigild" run --pcap "$tmp/garbage.pcap" --sdp "$rec/camera.sdp" --until-eof --report "$tmp/r2.json" \
	--watchlist "$tmp/other.vgw" --state-dir "$tmp/state" --deployment 1 2>"$tmp/run2.err"; then
	fail "a run matched with a watchlist file outside custody"
else
	grep -q "not a watchlist in vigild's custody" "$tmp/run2.err" || fail "other file: $(cat "$tmp/run2.err")"
fi
wl=$(sqlite3 "$tmp/state/vigil.db" "SELECT path FROM watchlists WHERE id = '1'")
printf '\001' | dd of="$wl" bs=1 seek=200 conv=notrunc status=none
if "$vigild" run --pcap "$tmp/garbage.pcap" --sdp "$rec/camera.sdp" --until-eof --report "$tmp/r3.json" \
	--state-dir "$tmp/state" --deployment 1 2>"$tmp/run3.err"; then
	fail "a run matched with a custody file altered after its seal"
else
	grep -q "no longer carries its seal\|checksum mismatch" "$tmp/run3.err" || fail "altered file: $(cat "$tmp/run3.err")"
fi
[ "$(sqlite3 "$tmp/state/vigil.db" "SELECT COUNT(*) FROM audit WHERE action = 'run.recorded.refused'")" = 2 ] ||
	fail "the refused runs were not both audited"
sqlite3 "$tmp/state/vigil.db" "SELECT detail FROM audit WHERE action = 'run.recorded'" | grep -q '"seal":"[0-9a-f]\{64\}"' ||
	fail "the matching run's audit entry does not name the seal it used"
"$vigilctl" audit verify >/dev/null || fail "the audit chain is broken"
e2e_done "e2e_garbage: $(j 'r.stages.rx.malformed + r.stages.rx.not_udp + r.stages.rx.ip_fragments + r.stages.rx.unknown_flow + r.cameras[0].rtp_malformed') bad packets counted where they belong; the same 200 frames and the same 2 alerts"
