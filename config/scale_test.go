//go:build unix

package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bigConfig is a file of n virtual servers with m real servers each (the
// bench-reconcile size is 1,000 × 20); extra is written into every
// [[virtual_server]] table and global into [global].
func bigConfig(n, m int, global, extra string) []byte {
	var b strings.Builder
	b.WriteString("[global]\ninterface = \"eth0\"\n" + global + "\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "[[virtual_server]]\nname = \"vs%d\"\nvip = \"10.%d.%d.%d\"\nport = 80\n%s\n", i, i>>16&255, i>>8&255, i&255, extra)
		for j := 0; j < m; j++ {
			fmt.Fprintf(&b, "[[virtual_server.real_server]]\nname = \"rs%d\"\naddress = \"192.168.%d.%d\"\n", j, j>>8&255, j&255+1)
		}
	}
	return []byte(b.String())
}

// Checking is linear: ten times the services cost about ten times the CPU
// (it took minutes at 100,000 when every message counted every service of
// the same name and rebuilt reflection field maps). A ratio, not a time
// limit: the box is shared, and a quadratic check is 100× either way.
func TestManyProblemsLinear(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("-short: 100,000 services take seconds (CI always runs it)")
	}
	parse := func(n int) time.Duration {
		data := bigConfig(n, 0, "", "colour = \"blue\"")
		// CPU time, not wall time: other tests and builds share the box.
		cpu := cpuTime(t)
		_, err := Parse("big.toml", data)
		took := cpuTime(t) - cpu
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != n {
			t.Fatalf("got %d problems (%v), want %d", len(ps), err != nil, n)
		}
		if want := `big.toml:8: virtual_server "vs0": colour: unknown key`; ps[0].String() != want {
			t.Errorf("first problem %q, want %q", ps[0], want)
		}
		return took
	}
	parse(1_000) // warm up: reflection caches, heap growth
	small := min(parse(10_000), parse(10_000))
	large := parse(100_000)
	ratio := float64(large) / float64(max(small, time.Millisecond))
	t.Logf("10,000 problems in %v, 100,000 in %v of CPU: ×%.1f", small, large, ratio)
	if ratio > 25 {
		t.Errorf("10× the services cost ×%.1f the CPU (%v vs %v), want about ×10 (linear)", ratio, large, small)
	}
}

// A bad value every service and real server inherits is reported once,
// where it is written.
func TestInheritedProblemOnce(t *testing.T) {
	data := bigConfig(1000, 20, `forwarding = "drr"`, "")
	start := time.Now()
	_, err := Parse("big.toml", data)
	took := time.Since(start)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse = %v, want Problems", err)
	}
	want := `big.toml:3: global.forwarding: unknown forwarding method "drr" (valid: dr, nat, tun)`
	if len(ps) != 1 || ps[0].String() != want {
		n := min(len(ps), 3)
		t.Fatalf("got %d problems (first %q), want exactly %q", len(ps), ps[:n], want)
	}
	t.Logf("1,000×20 with a typo in [global]: %v", took)
}

// ParseContext stops when its context is cancelled.
func TestParseContextCancelled(t *testing.T) {
	data := bigConfig(2000, 5, "", "colour = \"blue\"")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ParseContext(ctx, "big.toml", data); !errors.Is(err, context.Canceled) {
		t.Fatalf("ParseContext(cancelled) = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	data = bigConfig(100_000, 0, "", "colour = \"blue\"")
	start := time.Now()
	_, err := ParseContext(ctx, "big.toml", data)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ParseContext(1ms) = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("ParseContext returned %v after its deadline", took)
	}
	if _, err := ParseContext(context.Background(), "ok.toml", bigConfig(3, 2, "", "")); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// cpuTime is the user and system CPU time the process has used so far.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkParseLarge checks the bench-reconcile-sized file (1,000
// services × 20 real servers), valid and with an inherited mistake.
func BenchmarkParseLarge(b *testing.B) {
	for name, data := range map[string][]byte{
		"valid":             bigConfig(1000, 20, "", ""),
		"global forwarding": bigConfig(1000, 20, `forwarding = "drr"`, ""),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				Parse("big.toml", data)
			}
		})
	}
}
