//go:build linux

package vmtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/cloudflare/ipvs"

	"lbd/config"
	"lbd/internal/netlab"
)

// IPVS opens an IPVS netlink client in ns (nil: the test's own namespace;
// IPVS tables are per network namespace). It is closed at the end of the
// test.
func IPVS(t testing.TB, ns *netlab.NS) ipvs.Client {
	t.Helper()
	var c ipvs.Client
	open := func() (err error) {
		c, err = ipvs.New()
		return err
	}
	var err error
	if ns == nil {
		err = open()
	} else {
		err = ns.Do(open) // the netlink socket stays in ns
	}
	if err != nil {
		t.Fatalf("vmtest: open IPVS: %v", err)
	}
	t.Cleanup(func() {
		if cl, ok := c.(io.Closer); ok {
			cl.Close()
		}
	})
	return c
}

// Service is a virtual service with its destinations, as read back from
// the kernel.
type Service struct {
	ipvs.ServiceExtended
	Dests []ipvs.DestinationExtended // sorted by address and port
}

// Key names the service the way ipvsadm does: "TCP 10.77.0.100:80" or
// "FWM 7".
func (s Service) Key() string { return ServiceKey(s.Service) }

// ServiceKey names a service the way ipvsadm does.
func ServiceKey(s ipvs.Service) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return fmt.Sprintf("%s %s", s.Protocol, addrPort(s.Address.String(), s.Port))
}

func addrPort(addr string, port uint16) string {
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// Dest returns the destination at addr ("10.77.0.13:80"), if present.
func (s Service) Dest(addr string) (ipvs.DestinationExtended, bool) {
	for _, d := range s.Dests {
		if addrPort(d.Address.String(), d.Port) == addr {
			return d, true
		}
	}
	return ipvs.DestinationExtended{}, false
}

// Table is the whole IPVS table of a namespace, by Service.Key.
type Table map[string]Service

// ReadTable reads every service and destination through c.
func ReadTable(c ipvs.Client) (Table, error) {
	svcs, err := c.Services()
	if errors.Is(err, os.ErrNotExist) { // the library's answer for an empty table
		return Table{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vmtest: ipvs services: %w", err)
	}
	t := Table{}
	for _, s := range svcs {
		ds, err := c.Destinations(s.Service)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("vmtest: ipvs destinations of %s: %w", ServiceKey(s.Service), err)
		}
		sort.Slice(ds, func(i, j int) bool {
			if c := ds[i].Address.Compare(ds[j].Address); c != 0 {
				return c < 0
			}
			return ds[i].Port < ds[j].Port
		})
		t[ServiceKey(s.Service)] = Service{ServiceExtended: s, Dests: ds}
	}
	return t, nil
}

// MustReadTable is ReadTable that fails the test on error.
func MustReadTable(t testing.TB, c ipvs.Client) Table {
	t.Helper()
	tab, err := ReadTable(c)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// Rules renders the table's configuration without counters, one line per
// service and destination in a stable order, for comparing two states:
//
//	TCP 10.77.0.100:80 rr
//	TCP 10.77.0.100:443 sh persistent=300s flags=0x18
//	  -> 10.77.0.13:80 Route weight=1
//
// The kernel's own "hashed" flag is left out.
//
// lbd's own through-VIP check services (firewall marks in config's
// reserved range) are left out too: they are not the operator's services,
// and CheckRules shows them.
func (t Table) Rules() string {
	return t.rules(func(s Service) bool { return !config.IsCheckMark(s.FWMark) })
}

// CheckRules renders only lbd's own through-VIP check services, like Rules.
func (t Table) CheckRules() string {
	return t.rules(func(s Service) bool { return config.IsCheckMark(s.FWMark) })
}

func (t Table) rules(keep func(Service) bool) string {
	keys := make([]string, 0, len(t))
	for k, s := range t {
		if keep(s) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		s := t[k]
		fmt.Fprintf(&b, "%s %s", k, s.Scheduler)
		flags := s.Flags &^ ipvs.ServiceHashed
		if flags&ipvs.ServicePersistent != 0 {
			fmt.Fprintf(&b, " persistent=%ds", s.Timeout)
			flags &^= ipvs.ServicePersistent
		}
		if flags != 0 {
			fmt.Fprintf(&b, " flags=%#x", uint32(flags))
		}
		b.WriteByte('\n')
		for _, d := range s.Dests {
			fmt.Fprintf(&b, "  -> %s %s weight=%d\n", addrPort(d.Address.String(), d.Port), fwdName(d.FwdMethod), d.Weight)
		}
	}
	return b.String()
}

// fwdName uses ipvsadm's words for the forwarding methods.
func fwdName(f ipvs.ForwardType) string {
	switch f {
	case ipvs.Masquerade:
		return "Masq"
	case ipvs.Local:
		return "Local"
	case ipvs.Tunnel:
		return "Tunnel"
	case ipvs.DirectRoute:
		return "Route"
	}
	return f.String()
}
