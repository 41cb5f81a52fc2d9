#!/bin/sh
# Static checks: go vet, staticcheck and govulncheck, each over ./..., and
# a build of ./... for linux/arm64 and linux/arm.
#
# staticcheck and govulncheck come from the Go module proxy at the versions
# pinned here, installed into bin/tools (ignored by git) when missing, of
# another version, or built by another Go.
#
# govulncheck needs its vulnerability database (vuln.go.dev). Where that
# cannot be reached, this prints a one-line notice that vulnerabilities were
# NOT checked and goes on: an unreachable database is not a finding. Known
# vulnerabilities, when it can check, fail the run.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
TOOLS=${TOOLS:-$PWD/bin/tools}
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK=golang.org/x/vuln/cmd/govulncheck@v1.9.0

# tool NAME PACKAGE@VERSION installs the tool unless the right build is there.
tool() {
	want_mod=${2%@*}
	want_ver=${2#*@}
	if [ -x "$TOOLS/$1" ]; then
		info=$($GO version -m "$TOOLS/$1" 2>/dev/null || true)
		built_by=$(echo "$info" | awk 'NR == 1 { print $2 }')
		version=$(echo "$info" | awk '$1 == "mod" { print $3 }')
		if [ "$built_by" = "$($GO env GOVERSION)" ] && [ "$version" = "$want_ver" ]; then
			return 0
		fi
	fi
	echo "lint: installing $want_mod $want_ver into $TOOLS"
	GOBIN="$TOOLS" $GO install "$2"
}

echo "lint: go vet"
$GO vet ./...

# Everything builds for the boards' ARM (32 and 64 bits) too, without cgo:
# the terminal runs there, and a county may run the controller on an ARM
# server. System call numbers differ between architectures.
echo "lint: build for linux/arm64 and linux/arm (GOARM=7)"
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $GO build ./...
CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $GO build ./...

tool staticcheck "$STATICCHECK"
echo "lint: staticcheck"
"$TOOLS/staticcheck" ./...

tool govulncheck "$GOVULNCHECK"
echo "lint: govulncheck"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
timeout 300 "$TOOLS/govulncheck" ./... >"$out" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
	cat "$out"
elif [ "$status" -eq 124 ] || grep -q 'fetching vulnerabilities' "$out"; then
	reason=$(head -n 1 "$out")
	echo "lint: NOTICE: govulncheck could not reach its vulnerability database (vuln.go.dev), so dependencies were NOT checked for known vulnerabilities (${reason:-timed out})"
else
	cat "$out"
	echo "lint: govulncheck found known vulnerabilities (or failed); see above" >&2
	exit "$status"
fi
