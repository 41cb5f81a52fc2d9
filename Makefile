# Dalaba. `make test` runs every test, installing what the tests need
# (socat, PulseAudio) when it is missing.
GO ?= go
BIN ?= bin

.PHONY: test test-deps vet build cross bench clean

test: test-deps vet
	$(GO) test -race -count=1 -timeout 20m ./...

test-deps:
	@sh scripts/test-deps.sh

vet:
	$(GO) vet ./...

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

# The terminal daemon for the boards: 32-bit ARMv7 (armhf) and arm64,
# static, stripped.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/linux-armv7/dalaba-terminal ./cmd/dalaba-terminal
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/linux-arm64/dalaba-terminal ./cmd/dalaba-terminal
	@ls -l $(BIN)/linux-*/dalaba-terminal

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
