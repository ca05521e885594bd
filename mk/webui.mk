# webui: the console. Its browser test drives Debian's chromium headless
# (chromedp); `make deps` (run by `make test`) installs it when missing. In CI
# a missing chromium fails the test instead of skipping it. Screenshots of
# every screen land in artifacts/screenshots (ignored by git).
APT_PKGS += chromium
# webui's `//go:build vm` test drives the real director through the console
# and reads the kernel's IPVS table back (a console edit changes real IPVS).
VM_PKGS += ./webui

.PHONY: test-webui screenshots
test-webui: deps
	$(GO) test -race -count=1 ./webui

screenshots: deps
	$(GO) test -count=1 -run '^TestBrowser$$' ./webui
	@echo "screenshots in artifacts/screenshots/"
