# Packaging and installation (tools/mkdeb holds the one list of installed
# files; man pages and completions are generated from the binaries' help).
#   make deb                        dist/lbd_$(DEB_VERSION)_amd64.deb
#   make install [DESTDIR=] [PREFIX=/usr/local]
# The deb's install/run/purge test (tools/mkdeb, root) and the unit's
# systemd-analyze verify (cmd/lbd) run with the host tests.
APT_PKGS += systemd dpkg busybox-static

DEB_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/+/g'); echo $${v:-0.0.0+git$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)})
PREFIX ?= /usr/local
DESTDIR ?=
PKG_BIN := .cache/pkg-bin

.PHONY: deb install pkg-bin
pkg-bin:
	@mkdir -p $(PKG_BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(PKG_BIN)/ ./cmd/lbd ./cmd/lbctl

deb: pkg-bin
	$(GO) run ./tools/mkdeb -bin $(PKG_BIN) -version '$(DEB_VERSION)' -deb dist

install: pkg-bin
	$(GO) run ./tools/mkdeb -bin $(PKG_BIN) -install '$(if $(DESTDIR),$(DESTDIR),/)' -prefix '$(PREFIX)'
