# lbctl and the real-server script. `make test` lints every top-level shell
# script (test-unit depends on lint-sh); realserver.sh's namespace test runs
# with the host tests (scripts/realserver, needs root).
APT_PKGS += shellcheck

.PHONY: lint-sh test-lbctl
lint-sh: deps
	shellcheck --severity=style scripts/*.sh

test-unit: lint-sh

test-lbctl:
	$(GO) test -race -count=1 ./cmd/lbctl ./internal/apiclient ./scripts/realserver
