# cross: lbctl and the API client are what an operator runs from a laptop,
# so they must keep building for macOS and Windows (lbd itself builds there
# too, for -t, passwd and token, and refuses to direct). Only `go build` of
# those packages: seconds with a warm cache. `make vet` runs it.
CROSS_TARGETS ?= darwin/arm64 windows/amd64
CROSS_PKGS ?= ./cmd/lbctl ./internal/apiclient ./api ./config

.PHONY: cross
cross:
	@for t in $(CROSS_TARGETS); do \
		echo "GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build $(CROSS_PKGS)"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) build $(CROSS_PKGS) || exit 1; \
	done

vet: cross
