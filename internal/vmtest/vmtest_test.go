//go:build linux

package vmtest

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
)

func TestProcLinesAndStop(t *testing.T) {
	// The shell ignores nothing: SIGTERM ends it, and Stop reports that it
	// died of a signal.
	p := Start(t, "sh", exec.Command("sh", "-c", "echo one; echo two >&2; printf 'three'; sleep 30"))
	line, ok := p.WaitLine(0, 5*time.Second, func(s string) bool { return s == "two" })
	if !ok || line != "two" {
		t.Fatalf("WaitLine = %q, %v; lines %q", line, ok, p.Lines())
	}
	if got := strings.Join(p.Lines(), ","); got != "one,two" {
		t.Errorf("lines = %q, want one,two (a partial line is not a line yet)", got)
	}
	mark := p.Mark()
	if _, ok := p.WaitLine(mark, 100*time.Millisecond, func(string) bool { return true }); ok {
		t.Error("WaitLine found a line after the mark that was never written")
	}
	if p.Exited() {
		t.Fatal("exited early")
	}
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "signal: terminated") {
		t.Errorf("Stop = %v, want an exit by SIGTERM", err)
	}
	if !p.Exited() {
		t.Error("not exited after Stop")
	}
}

func TestProcCleanExit(t *testing.T) {
	p := Start(t, "true", exec.Command("true"))
	if ok, err := p.Wait(5 * time.Second); !ok || err != nil {
		t.Fatalf("Wait = %v, %v", ok, err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop after a clean exit = %v", err)
	}
}

func TestTableRules(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.1")
	web := Service{}
	web.Address, web.Port, web.Protocol, web.Scheduler = vip, 80, ipvs.TCP, "rr"
	web.Flags = ipvs.ServiceHashed
	for _, a := range []string{"192.0.2.12", "192.0.2.11"} {
		d := ipvs.DestinationExtended{}
		d.Address, d.Port, d.FwdMethod, d.Weight = netip.MustParseAddr(a), 80, ipvs.DirectRoute, 1
		web.Dests = append(web.Dests, d)
	}
	sticky := Service{}
	sticky.Address, sticky.Port, sticky.Protocol, sticky.Scheduler = vip, 443, ipvs.TCP, "sh"
	sticky.Flags = ipvs.ServiceHashed | ipvs.ServicePersistent | ipvs.ServiceSchedulerOpt1
	sticky.Timeout = 300
	d := ipvs.DestinationExtended{}
	d.Address, d.Port, d.FwdMethod, d.Weight = netip.MustParseAddr("192.0.2.11"), 8443, ipvs.Masquerade, 0
	sticky.Dests = []ipvs.DestinationExtended{d}
	fw := Service{}
	fw.FWMark, fw.Scheduler = 7, "wlc"

	tab := Table{web.Key(): web, sticky.Key(): sticky, fw.Key(): fw}
	want := `FWM 7 wlc
TCP 192.0.2.1:443 sh persistent=300s flags=0x8
  -> 192.0.2.11:8443 Masq weight=0
TCP 192.0.2.1:80 rr
  -> 192.0.2.12:80 Route weight=1
  -> 192.0.2.11:80 Route weight=1
`
	if got := tab.Rules(); got != want {
		t.Errorf("Rules:\n%s\nwant:\n%s", got, want)
	}
	if _, ok := web.Dest("192.0.2.11:80"); !ok {
		t.Error("Dest misses 192.0.2.11:80")
	}
	if _, ok := web.Dest("192.0.2.11:81"); ok {
		t.Error("Dest finds a port that is not there")
	}
}

func TestRequireSkipsOutsideVM(t *testing.T) {
	if InVM() {
		t.Skip("inside the VM")
	}
	t.Setenv("CI", "")
	ran := false
	t.Run("gated", func(t *testing.T) {
		defer func() { ran = true }()
		Require(t)
		t.Error("Require let a test run outside the VM")
	})
	if !ran {
		t.Fatal("subtest did not run")
	}
}

func TestParseKernelRelease(t *testing.T) {
	for _, tc := range []struct {
		rel          string
		major, minor int
		twos         bool // ip_vs_twos arrived in 6.6
	}{
		{"6.1.0-57-amd64", 6, 1, false},
		{"6.12.117+deb12-amd64", 6, 12, true},
		{"6.6.0", 6, 6, true},
		{"5.19.3-arch1", 5, 19, false},
		{"7.0.1", 7, 0, true},
	} {
		k, err := ParseKernelRelease(tc.rel)
		if err != nil || k.Major != tc.major || k.Minor != tc.minor || k.Release != tc.rel {
			t.Errorf("ParseKernelRelease(%q) = %+v, %v", tc.rel, k, err)
		}
		if got := k.AtLeast(6, 6); got != tc.twos {
			t.Errorf("%s AtLeast(6, 6) = %v", tc.rel, got)
		}
	}
	if _, err := ParseKernelRelease("unknown"); err == nil {
		t.Error("no error for a release without a version")
	}
	if k := RunningKernel(t); k.Major < 2 {
		t.Errorf("running kernel %+v", k)
	}
}
