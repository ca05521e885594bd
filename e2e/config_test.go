//go:build vm

package e2e

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/cloudflare/ipvs"

	"lbd/internal/vmtest"
)

// vs describes one virtual server of a lab config, and with it the IPVS
// service lbd must program for it.
type vs struct {
	name  string
	port  int
	sched string
	rs    []rs
	hc    string // body of [virtual_server.health_check]; "" = none
}

// rs is a real server of a vs; weight 0 means "not written" (default 1).
// A quiesced one is expected in IPVS at weight 0, waiting for removal.
type rs struct {
	name     string
	addr     netip.Addr
	weight   int
	quiesced bool
}

// rsAll returns every real server of the lab with the default weight.
func (l *lab) rsAll() []rs {
	var out []rs
	for _, r := range l.rs {
		out = append(out, rs{name: r.name, addr: r.addr})
	}
	return out
}

// config renders an lbd.toml for the lab: the director's LAN interface,
// the lab's forwarding method, a 1s resync so drift is repaired quickly,
// and the given virtual servers on the lab's VIP. global adds lines to
// [global].
func (l *lab) config(global string, vss ...vs) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\ninterface = \"eth0\"\nforwarding = %q\nresync_interval = \"1s\"\n%s\n", l.mode, global)
	for _, v := range vss {
		fmt.Fprintf(&b, "\n[[virtual_server]]\nname = %q\nvip = %q\nport = %d\nscheduler = %q\n", v.name, l.vip, v.port, v.sched)
		if v.hc != "" {
			fmt.Fprintf(&b, "  [virtual_server.health_check]\n%s\n", v.hc)
		}
		for _, r := range v.rs {
			if r.quiesced {
				continue // removed from the file, still in IPVS
			}
			fmt.Fprintf(&b, "  [[virtual_server.real_server]]\n  name = %q\n  address = %q\n", r.name, r.addr)
			if r.weight != 0 {
				fmt.Fprintf(&b, "  weight = %d\n", r.weight)
			}
		}
	}
	return b.String()
}

// rules is the IPVS table (vmtest.Table.Rules) lbd must program for vss.
func (l *lab) rules(vss ...vs) string {
	fwd := ipvs.DirectRoute
	if l.mode == "nat" {
		fwd = ipvs.Masquerade
	}
	tab := vmtest.Table{}
	for _, v := range vss {
		s := vmtest.Service{}
		s.Address, s.Port, s.Protocol, s.Family, s.Scheduler = l.vip, uint16(v.port), ipvs.TCP, ipvs.INET, v.sched
		for _, r := range v.rs {
			w := r.weight
			if w == 0 {
				w = 1
			}
			if r.quiesced {
				w = 0
			}
			d := ipvs.DestinationExtended{}
			d.Address, d.Port, d.FwdMethod, d.Weight, d.Family = r.addr, uint16(v.port), fwd, uint32(w), ipvs.INET
			s.Dests = append(s.Dests, d)
		}
		tab[s.Key()] = s
	}
	return sortDests(tab).Rules()
}

func sortDests(t vmtest.Table) vmtest.Table {
	for k, s := range t {
		ds := s.Dests
		for i := 1; i < len(ds); i++ {
			for j := i; j > 0 && ds[j].Address.Less(ds[j-1].Address); j-- {
				ds[j], ds[j-1] = ds[j-1], ds[j]
			}
		}
		t[k] = s
	}
	return t
}
