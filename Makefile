# Dalaba. `make test` runs the static checks, every test, and every fuzz
# target for a short while, installing what they need (socat, PulseAudio,
# staticcheck, govulncheck) when it is missing.
GO ?= go
BIN ?= bin
# How long each fuzz target runs: briefly in make test, longer in make fuzz.
FUZZTIME ?= 3s
LONGFUZZTIME ?= 60s

.PHONY: test test-deps vet lint fuzz build cross bench clean

test: test-deps lint
	$(GO) test -race -count=1 -timeout 20m ./...
	@sh scripts/fuzz.sh $(FUZZTIME)

test-deps:
	@sh scripts/test-deps.sh

vet:
	$(GO) vet ./...

# go vet, staticcheck and govulncheck (tools installed into bin/tools), and
# a build of everything for linux/arm64 and linux/arm.
lint:
	@sh scripts/lint.sh

# Every fuzz target for LONGFUZZTIME each; a failing input is saved under
# <package>/testdata/fuzz/ and becomes a regression test.
fuzz:
	@sh scripts/fuzz.sh $(LONGFUZZTIME)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

# The terminal daemon for the boards: 32-bit ARMv7 (armhf) and arm64,
# static, stripped.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/linux-armv7/dalaba-terminal ./cmd/dalaba-terminal
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/linux-arm64/dalaba-terminal ./cmd/dalaba-terminal
	@ls -l $(BIN)/linux-*/dalaba-terminal

# Not part of make test. The Go benchmarks (receipts written per second
# among them), then the fleet: fan-out at 1,000 / 5,000 / 15,000 simulated
# terminals against http.FileServer, bytes, the idle fleet, a reconnect
# storm (docs/benchmarks.md). BENCHFLAGS e.g. "-sizes 1000 -runs 1".
BENCHFLAGS ?=
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/dalaba-bench -out bench-results $(BENCHFLAGS)

clean:
	rm -rf $(BIN)
