#!/bin/bash
# decoder_vs_djpeg.sh VG_DECODE SRCROOT: Vigil's decoder gives exactly the pixels of libjpeg-turbo's
# djpeg with its defaults (-dct int, fancy upsampling) on the real demo photos, and the rgb_sha256
# it prints is the sha256 of those pixels (face-nets.md §10: one pixel level moves a descriptor).
set -euo pipefail
decode=$(realpath "$1") root=$2
demo=$root/fetched/face-api-1.7.15/demo
missing() {
	echo "decoder_vs_djpeg: missing $1: run tools/bootstrap"
	[ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ] && exit 1 || exit 77
}
[ -d "$demo" ] || missing "$demo"
command -v djpeg >/dev/null || missing "djpeg (apt-get install libjpeg-turbo-progs)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for img in "$demo"/sample*.jpg; do
	"$decode" "$img" "$tmp/ours.rgb" >"$tmp/ours.json"
	djpeg -dct int -ppm "$img" >"$tmp/ref.ppm"
	# PPM P6: "P6\n<w> <h>\n255\n" then the pixels.
	read -r w h < <(sed -n 2p "$tmp/ref.ppm")
	tail -c $((w * h * 3)) "$tmp/ref.ppm" >"$tmp/ref.rgb"
	if ! cmp -s "$tmp/ours.rgb" "$tmp/ref.rgb"; then
		echo "FAIL $(basename "$img"): pixels differ from djpeg -dct int"; exit 1
	fi
	sha=$(sha256sum <"$tmp/ref.rgb" | cut -d' ' -f1)
	grep -q "\"width\":$w,\"height\":$h,\"rgb_sha256\":\"$sha\"" "$tmp/ours.json" || {
		echo "FAIL $(basename "$img"): printed $(cat "$tmp/ours.json"), expected ${w}x$h $sha"; exit 1; }
	echo "ok $(basename "$img") ${w}x$h $sha"
	n=$((n + 1))
done
[ "$n" = 6 ] || { echo "FAIL: expected 6 demo photos, found $n"; exit 1; }
# A corrupt image: one line on stderr, exit 1, no output file written as if it were fine.
head -c 3000 "$demo/sample1.jpg" >"$tmp/cut.jpg"
if "$decode" "$tmp/cut.jpg" "$tmp/cut.rgb" >"$tmp/out" 2>"$tmp/err"; then
	echo "FAIL: a truncated JPEG decoded"; exit 1
fi
[ "$(wc -l <"$tmp/err")" = 1 ] && grep -q 'corrupt JPEG' "$tmp/err" || { echo "FAIL: error was: $(cat "$tmp/err")"; exit 1; }
[ ! -s "$tmp/out" ] || { echo "FAIL: printed a result for a corrupt image"; exit 1; }
echo "ok truncated JPEG refused: $(cat "$tmp/err")"
