#!/bin/bash
# vigilctl_cli.sh VIGILD VIGILCTL: the management CLI as its users meet it. vigild serve runs with a
# people map; vigilctl is run as different Unix users (setpriv switches uid, so the kernel, not
# the test, says who calls): a deployment refused when its requester tries to authorise it,
# authorised by someone else, started, shown; an auditor verifies the audit log, and after a row
# is edited behind vigild's back, verify fails naming the entry. Errors are one line, non-zero.
# At the end, the signed head: verify prints a public key that stays across restarts, an export
# verifies offline (vigilctl, and vigilctl(1)'s openssl recipe), and a chain rewritten with the
# head file recomputed, or re-signed with a replaced key, is refused (the latter against the pin).
set -uo pipefail
vigild=$(realpath "$1") vigilctl=$(realpath "$2")
tmp=$(mktemp -d)
chmod 755 "$tmp"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
check() { # check DESCRIPTION COMMAND...: the command must succeed
	if "${@:2}" >"$tmp/out" 2>"$tmp/err"; then echo "ok   $1"; else
		echo "FAIL $1: $(cat "$tmp/err" "$tmp/out" | head -3)"; fails=$((fails + 1)); fi
}
refuse() { # refuse DESCRIPTION PATTERN COMMAND...: must fail with one stderr line matching PATTERN
	if "${@:3}" >"$tmp/out" 2>"$tmp/err"; then echo "FAIL $1: it succeeded"; fails=$((fails + 1));
	elif [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$2" "$tmp/err"; then
		echo "FAIL $1: stderr was: $(cat "$tmp/err")"; fails=$((fails + 1)); else echo "ok   $1: $(cat "$tmp/err")"; fi
}
as() { local uid=$1; shift; setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"; }

export VIGIL_SOCKET=$tmp/vigild.sock
# Help comes from the verb table, for every verb, before vigild runs (so without contacting it).
check "--help lists the verbs" "$vigilctl" --help
for verb in faces status deployment watchlist alert audit camera config retention; do
	grep -q "^  $verb " "$tmp/out" || { echo "FAIL --help does not list $verb"; fails=$((fails + 1)); }
done
cp "$tmp/out" "$tmp/help"
for verb in faces status deployment watchlist alert audit camera config retention; do
	for flag in --help -h; do
		check "$verb $flag" "$vigilctl" "$verb" "$flag"
		# the verb's own lines of the full list, from the same table
		first=$(head -1 "$tmp/out" | sed 's/^usage: vigilctl /  /')
		grep -q "^usage: vigilctl $verb " "$tmp/out" && grep -qxF -- "$first" "$tmp/help" && [ ! -s "$tmp/err" ] ||
			{ echo "FAIL $verb $flag: $(cat "$tmp/out" "$tmp/err" | head -3)"; fails=$((fails + 1)); }
	done
done
"$vigilctl" fly >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" = 2 ] && grep -q "unknown verb 'fly'" "$tmp/err" && echo "ok   unknown verb exits 2" ||
	{ echo "FAIL unknown verb: exit $rc, $(cat "$tmp/err")"; fails=$((fails + 1)); }

cat >"$tmp/vigild.conf" <<CONF
vigild.state_dir = "$tmp/state"
vigild.socket = "$tmp/vigild.sock"
vigild.people = "2001:sgt.alice:operator,2003:supt.carol:authoriser,2004:auditor.dave:auditor"
vigild.metrics_listen = ""
vigild.log = "err"
CONF
"$vigild" serve --config "$tmp/vigild.conf" &
pid=$!
for _ in $(seq 50); do [ -S "$tmp/vigild.sock" ] && break; sleep 0.1; done

check "status as alice" as 2001 "$vigilctl" status
grep -q "you are sgt.alice; dumpable: no" "$tmp/out" || { echo "FAIL status text: $(cat "$tmp/out")"; fails=$((fails + 1)); }
refuse "status as a stranger" "may not status" as 4242 "$vigilctl" status
# A deployment names only a watchlist vigild holds, by its seal (invariant 2).
refuse "a watchlist vigild does not hold" "holds no watchlist 1" as 2001 "$vigilctl" deployment create \
	--name "Carnival day 1" --use-case sought-persons --location "Ladbroke Grove" --start now --end +8h \
	--justification "Sought persons expected" --watchlist 1@0000
mkdir -p "$tmp/alice" && chown 2001:2001 "$tmp/alice"
python3 "$(dirname "$0")/make_watchlist.py" "$tmp/alice/wl1.vgw" 1 0.5 3 && chown 2001 "$tmp/alice/wl1.vgw"
check "alice adds watchlist 1 to custody" as 2001 "$vigilctl" watchlist add "$tmp/alice/wl1.vgw" --name "Carnival list"
seal=$(as 2001 "$vigilctl" watchlist show 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
refuse "a seal that is not the watchlist's" "not the one given" as 2001 "$vigilctl" deployment create \
	--name "Carnival day 1" --use-case sought-persons --location "Ladbroke Grove" --start now --end +8h \
	--justification "Sought persons expected" --watchlist "1@${seal%?}0"
refuse "a window of centuries" "must end within" as 2001 "$vigilctl" deployment create --name "Forever" \
	--use-case sought-persons --location "Ladbroke Grove" --start now --end 9999999999 --justification "x" --watchlist 1
refuse "a name with a terminal escape" "control character" as 2001 "$vigilctl" deployment create \
	--name "$(printf 'Clear\033[2J')" --use-case sought-persons --location "Ladbroke Grove" --start now --end +8h \
	--justification "x" --watchlist 1
check "alice requests a deployment" as 2001 "$vigilctl" deployment create --name "Carnival day 1" \
	--use-case sought-persons --location "Ladbroke Grove" --start now --end +8h \
	--justification "Sought persons expected; carnival crowd" --watchlist "1@$seal"
grep -q "^deployment 1: requested" "$tmp/out" || { echo "FAIL create output: $(cat "$tmp/out")"; fails=$((fails + 1)); }
refuse "bad time" "is not a time" as 2001 "$vigilctl" deployment create --start tomorrowish
refuse "alice cannot authorise" "may not deployment.authorise" as 2001 "$vigilctl" deployment authorise 1 --reasons "mine"
refuse "start before authorisation" "not authorised" as 2001 "$vigilctl" deployment start 1
# The authoriser sees what they authorise: the justification and the sealed watchlist with its size.
check "carol reads the request" as 2003 "$vigilctl" deployment show 1
grep -q "justification: Sought persons expected; carnival crowd" "$tmp/out" && grep -q "watchlist 1 \"Carnival list\": 3 subjects.*seal $seal" "$tmp/out" ||
	{ echo "FAIL show for the authoriser: $(cat "$tmp/out")"; fails=$((fails + 1)); }
check "carol authorises" as 2003 "$vigilctl" deployment authorise 1 --reasons "Necessary and proportionate"
check "alice starts it" as 2001 "$vigilctl" deployment start 1
# A second request by alice, withdrawn by her; carol cannot withdraw it for her.
mkdir -p "$tmp/alice2" && chown 2001:2001 "$tmp/alice2"
python3 "$(dirname "$0")/make_watchlist.py" "$tmp/alice2/wl2.vgw" 2 0.5 1 && chown 2001 "$tmp/alice2/wl2.vgw"
check "alice adds watchlist 2" as 2001 "$vigilctl" watchlist add "$tmp/alice2/wl2.vgw" --name "Second list"
check "alice requests another" as 2001 "$vigilctl" deployment create --name "Day 2" --use-case sought-persons \
	--location "Ladbroke Grove" --start now --end +8h --justification "Day 2" --watchlist 2
refuse "carol cannot withdraw alice's request" "only sgt.alice" as 2003 "$vigilctl" deployment withdraw 2 --reason "no"
check "alice withdraws it" as 2001 "$vigilctl" deployment withdraw 2 --reason "Intelligence changed"
grep -q "^deployment 2: withdrawn" "$tmp/out" || { echo "FAIL withdraw output: $(cat "$tmp/out")"; fails=$((fails + 1)); }
# Names with escapes already stored (written behind vigild's back) reach no terminal raw.
sqlite3 "$tmp/state/vigil.db" "UPDATE deployments SET name = 'Evil' || char(27) || '[2J' || char(10) || 'forged' WHERE id = 2"
check "list with an escape in a name" as 2001 "$vigilctl" deployment list
if grep -q "$(printf '\033')" "$tmp/out" || [ "$(grep -c . "$tmp/out")" != 2 ]; then
	echo "FAIL a control character reached the terminal: $(od -c "$tmp/out" | head -5)"; fails=$((fails + 1))
else echo "ok   control characters are shown escaped"; fi
check "show as json" as 2004 "$vigilctl" deployment show 1 --json
grep -q '"state": "active"' "$tmp/out" && grep -q '"authorised_by": "supt.carol"' "$tmp/out" ||
	{ echo "FAIL show json: $(cat "$tmp/out")"; fails=$((fails + 1)); }
refuse "unknown verb" "unknown sub-command" as 2001 "$vigilctl" deployment fly 1
check "dave verifies the audit log" as 2004 "$vigilctl" audit verify
grep -q "audit log intact" "$tmp/out" || { echo "FAIL verify text: $(cat "$tmp/out")"; fails=$((fails + 1)); }
check "dave lists it" as 2004 "$vigilctl" audit list
grep -q "deployment.authorise" "$tmp/out" && grep -q "request.refused" "$tmp/out" ||
	{ echo "FAIL audit list: $(cat "$tmp/out")"; fails=$((fails + 1)); }

# Someone edits the database behind vigild's back (dropping the append-only triggers first).
sqlite3 "$tmp/state/vigil.db" "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'supt.smith' WHERE action = 'deployment.authorise';"
seq=$(sqlite3 "$tmp/state/vigil.db" "SELECT seq FROM audit WHERE action = 'deployment.authorise'")
refuse "verify finds the edit" "BROKEN at entry $seq" as 2004 "$vigilctl" audit verify

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ] && echo "ok   vigild stopped cleanly on SIGTERM" || { echo "FAIL vigild exit $rc"; fails=$((fails + 1)); }
refuse "no vigild" "cannot reach vigild" "$vigilctl" status

# ---- the signed audit head: a key to pin, an export checked offline, and a rewrite with the files ----
st2=$tmp/state2 db2=$tmp/state2/vigil.db
sed "s|$tmp/state\"|$st2\"|" "$tmp/vigild.conf" >"$tmp/vigild2.conf"
start2() { "$vigild" serve --config "$tmp/vigild2.conf" & pid=$!; for _ in $(seq 50); do [ -S "$tmp/vigild.sock" ] && break; sleep 0.1; done; }
stop2() { kill -TERM "$pid"; wait "$pid"; pid=; }
start2
check "verify prints the public key" as 2004 "$vigilctl" audit verify
key=$(sed -n 's/^public key: \([0-9a-f]\{64\}\)$/\1/p' "$tmp/out")
[ -n "$key" ] && grep -q "^head: entry [0-9]*, signed by the appliance's ed25519 key" "$tmp/out" ||
	{ echo "FAIL verify text: $(cat "$tmp/out")"; fails=$((fails + 1)); }
check "verify --json" as 2004 "$vigilctl" audit verify --json
grep -q '"head_signed": true' "$tmp/out" && grep -q "\"public_key\": \"$key\"" "$tmp/out" ||
	{ echo "FAIL verify json: $(cat "$tmp/out")"; fails=$((fails + 1)); }
check "verify against the pinned key" as 2004 "$vigilctl" audit verify --public-key "$key"
refuse "a malformed key" "public-key takes 64" as 2004 "$vigilctl" audit verify --public-key xyz
mkdir -m 1777 "$tmp/x2"
check "export" as 2004 "$vigilctl" audit export --out "$tmp/x2/export.jsonl"
grep -q "signed by the appliance's ed25519 key $key" "$tmp/out" || { echo "FAIL export text: $(cat "$tmp/out")"; fails=$((fails + 1)); }
stop2
start2
check "verify after a restart" as 2004 "$vigilctl" audit verify --public-key "$key"
grep -q "^public key: $key$" "$tmp/out" || { echo "FAIL key changed: $(cat "$tmp/out")"; fails=$((fails + 1)); }
stop2
# Offline, with no vigild: vigilctl, then the man page's recipe with python3 and openssl alone.
check "the export verifies offline" "$vigilctl" audit verify --export "$tmp/x2/export.jsonl" --public-key "$key"
grep -q "^export intact: " "$tmp/out" || { echo "FAIL offline text: $(cat "$tmp/out")"; fails=$((fails + 1)); }
recipe() {
	(cd "$tmp" && python3 - "$1" "$2" <<'PY' && openssl pkeyutl -verify -pubin -keyform DER -inkey key.der -rawin -in head.msg -sigfile head.sig)
import json, sys
h = json.loads(open(sys.argv[1]).read().splitlines()[-1])["head"]
open("head.msg", "w").write("vigil-audit-head-v1 %d %s" % (h["seq"], h["hash"]))
open("head.sig", "wb").write(bytes.fromhex(h["signature"]))
open("key.der", "wb").write(bytes.fromhex("302a300506032b6570032100" + sys.argv[2]))
PY
}
check "vigilctl(1)'s openssl recipe" recipe "$tmp/x2/export.jsonl" "$key"
grep -q "Signature Verified Successfully" "$tmp/out" || { echo "FAIL recipe: $(cat "$tmp/out")"; fails=$((fails + 1)); }
sed 's/"actor":"auditor.dave"/"actor":"auditor.eve"/' "$tmp/x2/export.jsonl" >"$tmp/x2/edited.jsonl"
refuse "an edited export" "BROKEN: entry [0-9]* was altered" "$vigilctl" audit verify --export "$tmp/x2/edited.jsonl"
head -n -1 "$tmp/x2/export.jsonl" >"$tmp/x2/cut.jsonl"
refuse "an export without its head" "no signed head" "$vigilctl" audit verify --export "$tmp/x2/cut.jsonl"

# An attacker with the files: rewrite an entry, recompute the whole chain and the head file.
rewrite() { # rewrite DB: auditor.dave's export becomes auditor.eve's, every hash recomputed, the head file to match
	python3 - "$1" <<'PY'
import hashlib, sqlite3, sys
def u64(v): return (v % 2**64).to_bytes(8, "little")
def text(s): return u64(2**64 - 1) if s is None else u64(len(s.encode())) + s.encode()
db = sqlite3.connect(sys.argv[1])
db.executescript("DROP TRIGGER IF EXISTS audit_no_update; UPDATE audit SET actor = 'auditor.eve' WHERE actor = 'auditor.dave'")
prev = bytes(32)
for seq, ts, actor, uid, action, obj, detail in db.execute("SELECT seq, ts_ns, actor, uid, action, object, detail FROM audit ORDER BY seq").fetchall():
    h = hashlib.blake2b(prev + u64(seq) + u64(ts) + text(actor) + u64(uid) + text(action) + text(obj) + text(detail), digest_size=32).digest()
    db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
    prev = h
db.commit()
f = sys.argv[1] + "-audit-head"
old = open(f).read().split()
open(f, "w").write(" ".join([str(seq), prev.hex()] + old[2:]) + "\n")  # the old signature kept
PY
}
rewrite "$db2" || { echo "FAIL rewrite script"; fails=$((fails + 1)); }
start2
refuse "verify refuses a consistently rewritten chain" "signature does not hold\|differs from the anchored head" as 2004 "$vigilctl" audit verify
stop2
# ... and with the key file replaced too, the head re-signed with the new key (openssl makes it).
openssl genpkey -algorithm ed25519 -outform DER -out "$tmp/x2/new.der" 2>/dev/null
rm -f "$db2-audit.key"; tail -c 32 "$tmp/x2/new.der" >"$db2-audit.key"; chmod 0400 "$db2-audit.key"
seq=$(cut -d' ' -f1 "$db2-audit-head") hash=$(cut -d' ' -f2 "$db2-audit-head")
printf 'vigil-audit-head-v1 %s %s' "$seq" "$hash" >"$tmp/x2/msg"
openssl pkeyutl -sign -inkey "$tmp/x2/new.der" -keyform DER -rawin -in "$tmp/x2/msg" -out "$tmp/x2/sig"
newkey=$(openssl pkey -inform DER -in "$tmp/x2/new.der" -pubout -outform DER | tail -c 32 | xxd -p -c 64)
echo "$seq $hash ed25519 $newkey $(xxd -p -c 128 "$tmp/x2/sig")" >"$db2-audit-head"
start2
check "re-signed with a new key: whole, but another key" as 2004 "$vigilctl" audit verify
grep -q "^public key: $newkey$" "$tmp/out" && [ "$newkey" != "$key" ] || { echo "FAIL new key: $(cat "$tmp/out")"; fails=$((fails + 1)); }
refuse "verify against the pinned key finds it" "not the pinned .*replaced" as 2004 "$vigilctl" audit verify --public-key "$key"
stop2

[ "$fails" = 0 ] && echo "vigilctl_cli: all passed" || { echo "vigilctl_cli: $fails failed"; exit 1; }
