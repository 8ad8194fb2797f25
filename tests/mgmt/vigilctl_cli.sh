#!/bin/bash
# vigilctl_cli.sh VIGILD VIGILCTL: the management CLI as its users meet it. vigild serve runs with a
# people map; vigilctl is run as different Unix users (setpriv switches uid, so the kernel, not
# the test, says who calls): a deployment refused when its requester tries to authorise it,
# authorised by someone else, started, shown; an auditor verifies the audit log, and after a row
# is edited behind vigild's back, verify fails naming the entry. Errors are one line, non-zero.
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
check "alice requests a deployment" as 2001 "$vigilctl" deployment create --name "Carnival day 1" \
	--use-case sought-persons --location "Ladbroke Grove" --start now --end +8h \
	--justification "Sought persons expected" --watchlist wl-carnival
grep -q "^deployment 1: requested" "$tmp/out" || { echo "FAIL create output: $(cat "$tmp/out")"; fails=$((fails + 1)); }
refuse "bad time" "is not a time" as 2001 "$vigilctl" deployment create --start tomorrowish
refuse "alice cannot authorise" "may not deployment.authorise" as 2001 "$vigilctl" deployment authorise 1 --reasons "mine"
refuse "start before authorisation" "not authorised" as 2001 "$vigilctl" deployment start 1
check "carol authorises" as 2003 "$vigilctl" deployment authorise 1 --reasons "Necessary and proportionate"
check "alice starts it" as 2001 "$vigilctl" deployment start 1
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
[ "$fails" = 0 ] && echo "vigilctl_cli: all passed" || { echo "vigilctl_cli: $fails failed"; exit 1; }
