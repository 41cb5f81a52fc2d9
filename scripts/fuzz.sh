#!/bin/sh
# Runs every fuzz target of the module, one after another, for the time
# given (default 3s; "make fuzz" gives 60s): go test -fuzz takes one target
# of one package per run. Targets are found with go test -list '^Fuzz'.
#
# A failing input is saved by go test under
# <package>/testdata/fuzz/<FuzzTarget>/ and from then on runs as a
# regression test in every go test: commit it together with the fix.
# Every target runs even when one fails; the exit status is 1 if any did.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime runs out while a worker is busy, more often on a
# loaded machine (golang/go#75804, fixed in Go 1.27). Such a run found
# nothing and wrote no input: it is run once more, and if it flakes again it
# is reported as a flake, not a failure. Anything else fails.
set -eu
fuzztime=${1:-3s}
cd "$(dirname "$0")/.."
GO=${GO:-go}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# "go test -list" prints a package's test names, then its "ok <package>" line.
if ! $GO test -list '^Fuzz' ./... >"$log" 2>&1; then
	cat "$log"
	echo "fuzz: listing the fuzz targets failed" >&2
	exit 1
fi
targets=$(awk '
	/^Fuzz/ { names = names " " $1; next }
	/^ok/   { n = split(names, a, " "); for (i = 1; i <= n; i++) print $2, a[i]; names = "" }
' "$log")
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

# run PACKAGE TARGET fuzzes one target, its output in $log.
run() {
	$GO test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" >"$log" 2>&1
}

# deadline_flake tells whether the failed run in $log is only golang/go#75804:
# "context deadline exceeded" and nothing but go test's own framing.
tab=$(printf '\t')
deadline_flake() {
	grep -q '^    context deadline exceeded$' "$log" || return 1
	! grep -v -e '^fuzz: elapsed: ' -e '^--- FAIL: Fuzz[A-Za-z0-9_]* ([0-9.]*s)$' \
		-e '^    context deadline exceeded$' -e '^FAIL$' -e '^exit status 1$' -e "^FAIL${tab}" "$log" | grep -q .
}

count=0
failed=""
flaked=""
start=$(date +%s)
echo "$targets" | {
	while read -r pkg name; do
		count=$((count + 1))
		printf 'fuzz: %-36s %-24s %s ... ' "$pkg" "$name" "$fuzztime"
		if run "$pkg" "$name"; then
			echo ok
		elif deadline_flake && { printf 'deadline flake (golang/go#75804), again ... '; run "$pkg" "$name"; }; then
			echo ok
		elif deadline_flake; then
			echo "deadline flake twice: found nothing (golang/go#75804)"
			flaked="$flaked $pkg.$name"
		else
			echo FAILED
			grep -v '^fuzz: elapsed: ' "$log" || true
			failed="$failed $pkg.$name"
		fi
	done
	elapsed=$(( $(date +%s) - start ))
	[ -z "$flaked" ] || echo "fuzz: flaked at the deadline without a finding:$flaked"
	nfailed=$(echo $failed | wc -w)
	if [ -n "$failed" ]; then
		echo "fuzz: $count targets in ${elapsed}s; FAILED:$failed"
		echo "fuzz: failing inputs are under <package>/testdata/fuzz/; re-run one with go test -run '<Target>/<file>' <package>"
		echo "fuzz: $((count - nfailed)) passed, $nfailed failed"
		exit 1
	fi
	echo "fuzz: $count targets, none failed (${fuzztime} each, ${elapsed}s)"
	echo "fuzz: $count passed, 0 failed"
}
