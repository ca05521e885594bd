# make demo: a narrated tour of lbd in the kernel VM (e2e/demo_test.go):
# two lbd directors with VRRP in front of two real servers, round robin,
# lbctl status, drain, a health check taking out a dead real server, and
# the master killed while a client measures the outage. Then the lab stays
# open (e2e/lab, the host side): both directors' consoles on
# http://127.0.0.1:3636 (lvs1) and :3637 (lvs2), forwarded by qemu's user
# network (scripts/vm/run --forward), with a generated password and an
# lbctl line. Ctrl-C, or `make demo-stop` from another shell, stops it.
# Without a terminal (CI, `make demo </dev/null`) the host's headless
# Chromium opens the master's console once (log in, status, a drain) and
# the demo stops. On a fresh machine deps, vm-kernel and build provide the
# packages, the kernel and the binaries. The `demo` build tag keeps the
# tour out of make test. `make demo LBD_DEMO_TOUR=0` opens the lab without
# the tour.
#
# make screenshots-readme: the README's images of the real lab (docs/img),
# taken by the lab's browser test (e2e/lab TestLabBrowser).
.PHONY: demo demo-stop screenshots-readme
demo: deps vm-kernel build
	@if [ -t 0 ]; then i=1; else i=0; fi; \
	LBD_DEMO_INTERACTIVE=$$i $(GO) test -tags demo -count=1 -timeout 0 -run '^TestDemo$$' -v ./e2e/lab

# demo-stop: a TERM to the demo's process (its pid in .cache/demo.pid),
# which stops the VM and removes what it made; waits until it is gone.
demo-stop:
	@f=.cache/demo.pid; \
	pid=$$(cat $$f 2>/dev/null) || { echo "no demo running ($$f missing)"; exit 0; }; \
	if ! tr '\0' ' ' </proc/$$pid/cmdline 2>/dev/null | grep -q 'lab.test'; then \
		echo "no demo running (stale $$f: pid $$pid)"; rm -f $$f; exit 0; fi; \
	kill -TERM $$pid; \
	for i in $$(seq 60); do kill -0 $$pid 2>/dev/null || { echo "demo (pid $$pid) stopped"; exit 0; }; sleep 0.5; done; \
	echo "demo (pid $$pid) did not stop within 30s"; exit 1

screenshots-readme: deps vm-kernel
	LBD_README_IMG=1 $(GO) test -count=1 -timeout 20m -run '^TestLabBrowser$$' -v ./e2e/lab
	@ls -l docs/img/lab-*.png

# make screenshots (mk/webui.mk) takes these too.
screenshots: screenshots-readme
