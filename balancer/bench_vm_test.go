//go:build vm

package balancer

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// benchTable is nSvc services x nDst real servers.
func benchTable(nSvc, nDst int) Table {
	tab := Table{Services: make([]VirtualService, 0, nSvc)}
	for i := range nSvc {
		vip := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 100, byte(i / 250), byte(i%250 + 1)}), 80)
		vs := VirtualService{Service: Service{Key: ServiceKey(TCP, vip), Scheduler: "wlc"}}
		for j := range nDst {
			vs.Destinations = append(vs.Destinations, Destination{
				Addr: netip.AddrFrom4([4]byte{10, 200, byte(j), byte(i%250 + 1)}), Port: 80, Weight: 1 + j%5})
		}
		tab.Services = append(tab.Services, vs)
	}
	return tab
}

// ipvsadmRules is the same table in `ipvsadm -R` syntax.
func ipvsadmRules(tab Table) string {
	var b strings.Builder
	for _, vs := range tab.Services {
		vip := netip.AddrPortFrom(vs.Addr, vs.Port)
		fmt.Fprintf(&b, "-A -t %s -s %s\n", vip, vs.Scheduler)
		for _, d := range vs.Destinations {
			fmt.Fprintf(&b, "-a -t %s -r %s -g -w %d\n", vip, netip.AddrPortFrom(d.Addr, d.Port), d.Weight)
		}
	}
	return b.String()
}

// BenchmarkReconcile times the reconciler on 1,000 services x 20 real
// servers against `ipvsadm -R` loading the same table, in one VM. Run it
// with -benchtime 1x (make bench-reconcile): each figure is one run.
func BenchmarkReconcile(b *testing.B) {
	const nSvc, nDst = 1000, 20
	tab := benchTable(nSvc, nDst)
	k, ck := openVM(b)
	r := NewReconciler(ck, Options{})
	say := func(format string, a ...any) { fmt.Printf("bench-reconcile: "+format+"\n", a...) }
	say("table: %d services x %d real servers = %d destinations; CPUs in the VM: %d",
		nSvc, nDst, nSvc*nDst, runtime.NumCPU())

	t0 := time.Now()
	if err := r.Apply(tab); err != nil {
		b.Fatal(err)
	}
	first := time.Since(t0)
	w := ck.counts()
	say("first apply:        %8.1f ms  writes=%d (%v)", ms(first), sum(w), w)
	ours := readKernel(b, k)
	if len(ours.Services) != nSvc {
		b.Fatalf("kernel has %d services", len(ours.Services))
	}

	ck.reset()
	t0 = time.Now()
	if err := r.Resync(); err != nil {
		b.Fatal(err)
	}
	resync := time.Since(t0)
	w = ck.counts()
	say("no-op resync:       %8.1f ms  writes=%d reads=%d", ms(resync), sum(w), ck.n[OpListServices]+ck.n[OpListDestinations])
	if sum(w) != 0 {
		b.Errorf("no-op resync wrote %v", w)
	}

	ck.reset()
	t0 = time.Now()
	if err := r.Apply(tab); err != nil {
		b.Fatal(err)
	}
	noop := time.Since(t0)
	say("no-op apply:        %8.1f ms  writes=%d", ms(noop), sum(ck.counts()))

	tab.Services[500].Destinations[7].Weight = 42
	ck.reset()
	t0 = time.Now()
	if err := r.Apply(tab); err != nil {
		b.Fatal(err)
	}
	one := time.Since(t0)
	w = ck.counts()
	say("one-change apply:   %8.1f ms  writes=%d (%v)", ms(one), sum(w), w)
	if sum(w) != 1 {
		b.Errorf("one change took %v", w)
	}
	tab.Services[500].Destinations[7].Weight = 1 + 7%5

	// ipvsadm -R of the same table on a cleared kernel.
	rules := b.TempDir() + "/rules"
	if err := os.WriteFile(rules, []byte(ipvsadmRules(tab)), 0o644); err != nil {
		b.Fatal(err)
	}
	t0 = time.Now()
	run(b, "ipvsadm", "-C")
	clear := time.Since(t0)
	in, err := os.Open(rules)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command("ipvsadm", "-R")
	cmd.Stdin = in
	t0 = time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ipvsadm -R: %v\n%s", err, out)
	}
	restore := time.Since(t0)
	theirs := readKernel(b, k)
	if !reflect.DeepEqual(ours, theirs) {
		b.Errorf("ipvsadm -R built a different table than the reconciler")
	}
	say("ipvsadm -C:         %8.1f ms", ms(clear))
	say("ipvsadm -R:         %8.1f ms  (%d rules)", ms(restore), nSvc*(nDst+1))
	say("first apply / ipvsadm -R = %.2f", first.Seconds()/restore.Seconds())

	// The reconciler adopting a table ipvsadm loaded: reads only.
	r2 := NewReconciler(ck, Options{})
	ck.reset()
	t0 = time.Now()
	if err := r2.Apply(tab); err != nil {
		b.Fatal(err)
	}
	say("adopt loaded table: %8.1f ms  writes=%d", ms(time.Since(t0)), sum(ck.counts()))

	b.ReportMetric(ms(first), "first-apply-ms")
	b.ReportMetric(ms(resync), "noop-resync-ms")
	b.ReportMetric(ms(one), "one-change-ms")
	b.ReportMetric(ms(restore), "ipvsadm-R-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sum(m map[Op]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
