package balancer

import (
	"bufio"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ipvsadmEntry is one service of `ipvsadm -Ln` with its real servers' live
// counters (by key).
type ipvsadmEntry struct {
	VirtualService
	Active map[DestKey]int
}

// parseIPVSADM reads `ipvsadm -Ln` output into the model, normalized like
// the kernel reports it. It is an independent reading of the table (the C
// tool over its own netlink code), used to check the library's view.
func parseIPVSADM(out string) ([]ipvsadmEntry, error) {
	var list []ipvsadmEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(line, "IP Virtual Server") ||
			strings.HasPrefix(line, "Prot ") || strings.HasPrefix(line, "  -> RemoteAddress") {
			continue
		}
		bad := func(why string) error { return fmt.Errorf("ipvsadm line %d %q: %s", n, line, why) }
		if f[0] == "->" {
			if len(list) == 0 || len(f) != 6 {
				return nil, bad("real server line out of place")
			}
			cur := &list[len(list)-1]
			ap, err := netip.ParseAddrPort(f[1])
			if err != nil {
				return nil, bad(err.Error())
			}
			d := Destination{Addr: ap.Addr(), Port: ap.Port()}
			switch f[2] {
			case "Route":
				d.Forwarding = DR
			case "Masq":
				d.Forwarding = NAT
			case "Tunnel":
				d.Forwarding = Tunnel
			default:
				return nil, bad("forwarding " + f[2])
			}
			w, err1 := strconv.Atoi(f[3])
			act, err2 := strconv.Atoi(f[4])
			if err1 != nil || err2 != nil {
				return nil, bad("numbers")
			}
			d.Weight = w
			cur.Destinations = append(cur.Destinations, d)
			cur.Active[d.Key()] = act
			continue
		}

		var s Service
		i := 0
		switch f[0] {
		case "FWM":
			if len(f) < 3 {
				return nil, bad("short")
			}
			mark, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return nil, bad(err.Error())
			}
			s.Key = FwmarkKey(uint32(mark), IPv4)
			i = 2
			if f[2] == "IPv6" {
				s.Family = IPv6
				i = 3
			}
		case "TCP", "UDP", "SCTP":
			p, _ := ParseProtocol(f[0])
			ap, err := netip.ParseAddrPort(f[1])
			if err != nil {
				return nil, bad(err.Error())
			}
			s.Key = ServiceKey(p, ap)
			i = 2
		default:
			return nil, bad("unknown service type")
		}
		if i >= len(f) {
			return nil, bad("no scheduler")
		}
		s.Scheduler = f[i]
		s.PersistenceNetmask = s.Family.bits()
		for i++; i < len(f); i++ {
			switch {
			case strings.HasPrefix(f[i], "("):
				for _, name := range strings.Split(strings.Trim(f[i], "()"), ",") {
					fl, err := ParseFlag(name)
					if err != nil {
						return nil, bad(err.Error())
					}
					s.Flags |= fl
				}
			case f[i] == "ops":
				s.Flags |= FlagOnePacket
			case f[i] == "persistent" && i+1 < len(f):
				sec, err := strconv.Atoi(f[i+1])
				if err != nil {
					return nil, bad(err.Error())
				}
				s.Persistence = time.Duration(sec) * time.Second
				i++
			case f[i] == "mask" && i+1 < len(f):
				if s.Family == IPv6 {
					m, err := strconv.Atoi(f[i+1])
					if err != nil {
						return nil, bad(err.Error())
					}
					s.PersistenceNetmask = m
				} else {
					m, err := netip.ParseAddr(f[i+1])
					if err != nil {
						return nil, bad(err.Error())
					}
					ones, b := 0, m.As4()
					for _, x := range b {
						for ; x&0x80 != 0; x <<= 1 {
							ones++
						}
					}
					s.PersistenceNetmask = ones
				}
				i++
			default:
				return nil, bad("unknown word " + f[i])
			}
		}
		list = append(list, ipvsadmEntry{VirtualService: VirtualService{Service: s}, Active: map[DestKey]int{}})
	}
	return list, sc.Err()
}

// ipvsadmTable drops the counters and sorts like Fake.Table.
func ipvsadmTable(list []ipvsadmEntry) Table {
	var t Table
	for _, e := range list {
		vs := e.VirtualService
		sortDests(vs.Destinations)
		t.Services = append(t.Services, vs)
	}
	sortTable(t)
	return t
}

func TestParseIPVSADM(t *testing.T) {
	// Shaped like ipvsadm 1.31's -Ln output.
	const out = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.10.0.4:443 sh (sh-fallback,sh-port)
  -> 10.20.0.1:443                Route   1      0          0         
TCP  10.10.0.5:443 mh (mh-port) persistent 300 mask 255.255.255.0
  -> 10.20.0.2:443                Tunnel  7      2          1         
UDP  10.10.0.3:53 wlc ops
  -> 10.20.0.4:5353               Masq    3      0          12        
TCP  [2001:db8:10::1]:80 wlc persistent 60 mask 64
  -> [2001:db8:20::2]:8080        Masq    1      0          0         
FWM  42 rr
  -> 10.20.0.1:0                  Route   1      0          0         
FWM  43 IPv6 wrr
`
	list, err := parseIPVSADM(out)
	if err != nil {
		t.Fatal(err)
	}
	got := ipvsadmTable(list)
	want := Table{Services: []VirtualService{
		{Service: Service{Key: tcp("10.10.0.4:443"), Scheduler: "sh", Flags: FlagSHFallback | FlagSHPort, PersistenceNetmask: 32},
			Destinations: []Destination{dest("10.20.0.1:443", 1, DR)}},
		{Service: Service{Key: tcp("10.10.0.5:443"), Scheduler: "mh", Flags: FlagMHPort, Persistence: 300 * time.Second, PersistenceNetmask: 24},
			Destinations: []Destination{dest("10.20.0.2:443", 7, Tunnel)}},
		{Service: Service{Key: udp("10.10.0.3:53"), Scheduler: "wlc", Flags: FlagOnePacket, PersistenceNetmask: 32},
			Destinations: []Destination{dest("10.20.0.4:5353", 3, NAT)}},
		{Service: Service{Key: tcp("[2001:db8:10::1]:80"), Scheduler: "wlc", Persistence: time.Minute, PersistenceNetmask: 64},
			Destinations: []Destination{dest("[2001:db8:20::2]:8080", 1, NAT)}},
		{Service: Service{Key: FwmarkKey(42, IPv4), Scheduler: "rr", PersistenceNetmask: 32},
			Destinations: []Destination{dest("10.20.0.1:0", 1, DR)}},
		{Service: Service{Key: FwmarkKey(43, IPv6), Scheduler: "wrr", PersistenceNetmask: 128}},
	}}
	sortTable(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if list[1].Active[dkey("10.20.0.2:443")] != 2 {
		t.Error("active connections not read")
	}
	if _, err := parseIPVSADM("TCP  10.0.0.1:80 rr bogus\n"); err == nil {
		t.Error("unknown word accepted")
	}
	if _, err := parseIPVSADM("  -> 10.0.0.1:80 Route 1 0 0\n"); err == nil {
		t.Error("orphan real server accepted")
	}
}
