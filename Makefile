# lbd — top-level targets. Each area adds its own rules in mk/*.mk and the
# Debian packages it needs to APT_PKGS; `make deps` installs what is missing.
SHELL := /bin/bash
GO ?= go
export GOTOOLCHAIN := local
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin

APT_PKGS := iproute2

.PHONY: all build test test-unit deps vet fmt clean
all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

-include mk/*.mk

deps:
	@scripts/deps.sh $(sort $(APT_PKGS))

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Unit and namespace tests on the host (namespace tests need root).
test-unit: deps
	$(GO) test -count=1 -timeout 15m ./...

# test: everything: vet, host tests, then the kernel-VM tests (mk/vm.mk).
test: vet test-unit test-vm

clean:
	rm -rf $(BIN) .cache/vm/initramfs*
