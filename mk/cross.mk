# cross: lbctl and the API client are what an operator runs from a laptop,
# so the tree keeps building for macOS and Windows: lbd builds there too
# (for -t, passwd and token) and refuses to direct; Linux-only tools carry
# a build tag. Only `go build`: seconds with a warm cache. `make vet` runs it.
CROSS_TARGETS ?= darwin/arm64 windows/amd64
CROSS_PKGS ?= ./...

.PHONY: cross
cross:
	@for t in $(CROSS_TARGETS); do \
		echo "GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build $(CROSS_PKGS)"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) build $(CROSS_PKGS) || exit 1; \
	done

vet: cross
