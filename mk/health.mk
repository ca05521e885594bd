# healthcheck: checkers, rise/fall and the scheduler. Its tests run real
# servers on loopback and real scripts (test-unit runs them with ./...).
# bench-health checks 10,000 loopback listeners (served by a helper
# process) every second and prints rate, CPU of the checking process only
# (getrusage over the measured window), context switches, peak RSS and
# time from a listener dying to its down transition. On loopback the
# listeners' kernel side of each handshake runs in the checker's softirq
# and is billed to it (about a quarter of its CPU, measured with perf).
# Each type runs once with healthcheck's own network layers, once per
# layer with the standard library's instead, and once with all of the
# standard library's (-compare): the last lines say what each own layer
# saves in CPU per 10,000 checks a second, measured in the same run
# (BENCH_HEALTH_FLAGS=-rounds=3: three interleaved runs each, medians).
# dns checks UDP DNS servers (the helper answers with miekg/dns); it uses
# none of the own layers, so it runs once and prints its CPU and RSS.
.PHONY: test-health bench-health
test-health:
	$(GO) test -race -count=1 ./healthcheck/...

BENCH_HEALTH_N ?= 10000
BENCH_HEALTH_DURATION ?= 10s
BENCH_HEALTH_TYPES ?= tcp http dns
BENCH_HEALTH_FLAGS ?=
bench-health:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/benchhealth ./tools/benchhealth
	@for t in $(BENCH_HEALTH_TYPES); do \
		$(BIN)/benchhealth -compare -n $(BENCH_HEALTH_N) -duration $(BENCH_HEALTH_DURATION) -type $$t $(BENCH_HEALTH_FLAGS) || exit 1; \
	done
