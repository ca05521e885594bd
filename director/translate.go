package director

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"lbd/balancer"
	"lbd/config"
	"lbd/healthcheck"
)

// healthOf answers the health of one real server by its check ID. ok is
// false when the real server has no check (it then counts as up).
type healthOf func(id string) (st healthcheck.State, ok bool)

// checkID names a real server's health check: "vs/rs".
func checkID(vs, rs string) string { return vs + "/" + rs }

// plan is the desired IPVS table and, per service, the figures the console
// and VRRP tracking need. It is a pure function of the config and health.
type plan struct {
	table    balancer.Table
	services map[string]servicePlan // by virtual server name
}

type servicePlan struct {
	key         balancer.Key
	upWeight    int
	healthy     bool
	sorryActive bool
	sorry       *balancer.Destination
	weights     map[string]int // desired weight by real-server name; absent = not in the table
}

// buildPlan translates a resolved config (config.Parse or config.Normalize:
// every default and inherited value filled in) and the current health into
// the desired table. It reads settings as they are and decides no default.
// Rules (keepalived/piranha semantics):
//   - inactive services and real servers are not in the table;
//   - a drained real server stays with weight 0 (existing connections
//     finish, no new ones);
//   - a real server whose check is down gets weight 0 (quiesce, the
//     default) or leaves the table (on_failure = "remove", the default
//     of a udp service); a udp service's leaves it at once, without the
//     removal grace (RemoveNow), so the flows of clients that keep their
//     source port move to a live real server at their next datagram;
//   - one not checked yet counts as up: a restarted lbd keeps the table it
//     finds instead of emptying it while the first checks run;
//   - the sorry server is added while no real server is up.
func buildPlan(cfg *config.Config, health healthOf) (plan, error) {
	p := plan{services: map[string]servicePlan{}}
	g := cfg.Global
	p.table.Timeouts = balancer.Timeouts{TCP: g.TCPTimeout.Duration, TCPFin: g.TCPFinTimeout.Duration, UDP: g.UDPTimeout.Duration}
	for _, vs := range cfg.VirtualServers {
		if !*vs.Active {
			continue
		}
		key, err := serviceKey(vs)
		if err != nil {
			return plan{}, fmt.Errorf("virtual server %s: %w", vs.Name, err)
		}
		svc := balancer.VirtualService{Service: balancer.Service{
			Key:                key,
			Scheduler:          vs.Scheduler,
			Persistence:        vs.Persistence.Duration.Truncate(time.Second),
			PersistenceNetmask: vs.PersistenceNetmask,
		}}
		for _, f := range vs.SchedulerFlags {
			fl, err := balancer.ParseFlag(f)
			if err != nil {
				return plan{}, fmt.Errorf("virtual server %s: %w", vs.Name, err)
			}
			svc.Flags |= fl
		}
		sp := servicePlan{key: key, weights: map[string]int{}}
		for _, rs := range vs.RealServers {
			if !*rs.Active {
				continue
			}
			d, err := destination(rs)
			if err != nil {
				return plan{}, fmt.Errorf("virtual server %s: real server %s: %w", vs.Name, rs.Name, err)
			}
			up := true
			if vs.HealthCheck != nil && vs.HealthCheck.Type != "none" {
				if st, ok := health(checkID(vs.Name, rs.Name)); ok && st == healthcheck.Down {
					up = false
				}
			}
			switch {
			case !up && vs.OnFailure == "remove":
				if key.Fwmark == 0 && key.Protocol == balancer.UDP {
					svc.RemoveNow = append(svc.RemoveNow, d.Key())
				}
				continue
			case !up || rs.Drained:
				d.Weight = 0
			}
			if up && !rs.Drained {
				sp.upWeight += d.Weight
			}
			sp.weights[rs.Name] = d.Weight
			svc.Destinations = append(svc.Destinations, d)
		}
		sp.healthy = sp.upWeight >= vs.Quorum
		if sp.upWeight == 0 && vs.SorryServer != "" {
			d, err := sorryDestination(vs)
			if err != nil {
				return plan{}, fmt.Errorf("virtual server %s: sorry_server: %w", vs.Name, err)
			}
			if !hasDest(svc.Destinations, d.Key()) {
				svc.RemoveNow = slices.DeleteFunc(svc.RemoveNow, func(k balancer.DestKey) bool { return k == d.Key() })
				svc.Destinations = append(svc.Destinations, d)
				sp.sorryActive = true
				sp.sorry = &d
			}
		}
		p.table.Services = append(p.table.Services, svc)
		p.services[vs.Name] = sp
	}
	// lbd's own services for through-VIP checks: not in p.services, so
	// the console, lbctl and VRRP tracking (quorum) never see them; in the
	// table, so the reconciler adds, repairs and removes them like any
	// other. Whatever the real server's health, it stays in its check's
	// service with weight 1: the check must reach it to see it come back.
	marks, err := checkMarks(cfg)
	if err != nil {
		return plan{}, err
	}
	for _, m := range slices.SortedFunc(maps.Keys(marks), func(a, b checkTarget) int { return cmp.Compare(marks[a], marks[b]) }) {
		p.table.Services = append(p.table.Services, balancer.VirtualService{
			Service:      balancer.Service{Key: balancer.FwmarkKey(marks[m], m.family), Scheduler: "rr"},
			Destinations: []balancer.Destination{{Addr: m.addr, Weight: 1, Forwarding: m.fwd}},
		})
	}
	return p, p.table.Validate()
}

// needsAcceptLocal reports whether t has an IPv4 through-VIP check service.
func needsAcceptLocal(t balancer.Table) bool {
	for _, s := range t.Services {
		if isCheckService(s.Key) && s.Family == balancer.IPv4 {
			return true
		}
	}
	return false
}

// checkTarget is where a through-VIP check's service sends the check: one
// service (one mark) serves every check of the same real server address
// and forwarding, whatever the VIP and port, since a firewall-mark
// service matches only the mark.
type checkTarget struct {
	family balancer.Family // the packets': the VIP's
	addr   netip.Addr
	fwd    balancer.Forwarding
}

// throughVIP calls fn for every real server checked through its VIP, with
// its check target.
func throughVIP(cfg *config.Config, fn func(vs config.VirtualServer, rs config.RealServer, t checkTarget)) error {
	for _, vs := range cfg.VirtualServers {
		hc := vs.HealthCheck
		if !*vs.Active || hc == nil || hc.Type == "none" || hc.ThroughVIP == nil || !*hc.ThroughVIP {
			continue
		}
		key, err := serviceKey(vs)
		if err != nil {
			return fmt.Errorf("virtual server %s: %w", vs.Name, err)
		}
		for _, rs := range vs.RealServers {
			if !*rs.Active {
				continue
			}
			d, err := destination(rs)
			if err != nil {
				return fmt.Errorf("virtual server %s: real server %s: %w", vs.Name, rs.Name, err)
			}
			if d.Forwarding == balancer.NAT {
				continue // the director rewrites the address: nothing to prove
			}
			fn(vs, rs, checkTarget{family: key.Family, addr: d.Addr, fwd: d.Forwarding})
		}
	}
	return nil
}

// checkMarks gives every check target its firewall mark in config's
// reserved range: a hash of the target, so a real server keeps its mark
// (and its service) while others come and go; a collision takes the next
// free mark, in the targets' sorted order, so the result is a pure
// function of the config.
func checkMarks(cfg *config.Config) (map[checkTarget]uint32, error) {
	set := map[checkTarget]bool{}
	if err := throughVIP(cfg, func(_ config.VirtualServer, _ config.RealServer, t checkTarget) { set[t] = true }); err != nil {
		return nil, err
	}
	targets := slices.SortedFunc(maps.Keys(set), func(a, b checkTarget) int {
		return cmp.Or(cmp.Compare(a.family, b.family), a.addr.Compare(b.addr), cmp.Compare(a.fwd, b.fwd))
	})
	if uint64(len(targets)) > uint64(config.CheckMarkCount) {
		return nil, fmt.Errorf("%d real servers checked through the VIP: more than the %d marks lbd has", len(targets), config.CheckMarkCount)
	}
	used := make(map[uint32]bool, len(targets))
	out := make(map[checkTarget]uint32, len(targets))
	for _, t := range targets {
		h := fnv.New32a()
		h.Write([]byte{byte(t.family), byte(t.fwd)})
		h.Write(t.addr.AsSlice())
		i := h.Sum32() % config.CheckMarkCount
		for used[i] {
			i = (i + 1) % config.CheckMarkCount
		}
		used[i] = true
		out[t] = config.CheckMarkBase + i
	}
	return out, nil
}

func hasDest(ds []balancer.Destination, k balancer.DestKey) bool {
	for _, d := range ds {
		if d.Key() == k {
			return true
		}
	}
	return false
}

func serviceKey(vs config.VirtualServer) (balancer.Key, error) {
	if vs.Fwmark != 0 {
		fam := balancer.IPv4
		if vs.Family == "inet6" {
			fam = balancer.IPv6
		}
		return balancer.FwmarkKey(vs.Fwmark, fam), nil
	}
	addr, err := netip.ParseAddr(vs.VIP)
	if err != nil {
		return balancer.Key{}, err
	}
	proto, err := balancer.ParseProtocol(vs.Protocol)
	if err != nil {
		return balancer.Key{}, err
	}
	return balancer.ServiceKey(proto, netip.AddrPortFrom(addr, uint16(vs.Port))), nil
}

// destination is a resolved real server's IPVS destination: its port and
// forwarding are already inherited from its service (config does that).
func destination(rs config.RealServer) (balancer.Destination, error) {
	addr, err := netip.ParseAddr(rs.Address)
	if err != nil {
		return balancer.Destination{}, err
	}
	f, err := balancer.ParseForwarding(rs.Forwarding)
	if err != nil {
		return balancer.Destination{}, err
	}
	return balancer.Destination{Addr: addr.Unmap(), Port: uint16(rs.Port), Weight: *rs.Weight, Forwarding: f}, nil
}

// sorryDestination parses "addr" or "addr:port" ("[v6]:port"); it forwards
// like the service.
func sorryDestination(vs config.VirtualServer) (balancer.Destination, error) {
	f, err := balancer.ParseForwarding(vs.Forwarding)
	if err != nil {
		return balancer.Destination{}, err
	}
	port := vs.Port
	addr, err := netip.ParseAddr(vs.SorryServer)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(vs.SorryServer)
		if err2 != nil {
			return balancer.Destination{}, fmt.Errorf("%q is neither an address nor address:port", vs.SorryServer)
		}
		addr, port = ap.Addr(), int(ap.Port())
	}
	if f != balancer.NAT && port != vs.Port {
		// DR and tunnelling cannot remap ports: use NAT for a sorry server on
		// another port, as ipvsadm users do.
		f = balancer.NAT
	}
	return balancer.Destination{Addr: addr.Unmap(), Port: uint16(port), Weight: 1, Forwarding: f}, nil
}

// healthSpecs maps every checked real server of a resolved config to its
// health-check spec, every setting given: the healthcheck package's own
// zero-value defaults never apply to lbd's checks.
func healthSpecs(cfg *config.Config) map[string]healthcheck.Spec {
	out := map[string]healthcheck.Spec{}
	defer func() {
		// buildPlan has refused a config whose marks cannot be given.
		marks, _ := checkMarks(cfg)
		_ = throughVIP(cfg, func(vs config.VirtualServer, rs config.RealServer, t checkTarget) {
			id := checkID(vs.Name, rs.Name)
			if s, ok := out[id]; ok && marks[t] != 0 {
				s.ThroughVIP, s.Mark = vs.VIP, marks[t]
				out[id] = s
			}
		})
	}()
	for _, vs := range cfg.VirtualServers {
		hc := vs.HealthCheck
		if hc == nil || hc.Type == "none" || !*vs.Active {
			continue
		}
		for _, rs := range vs.RealServers {
			if !*rs.Active {
				continue
			}
			out[checkID(vs.Name, rs.Name)] = healthcheck.Spec{
				Type:         healthcheck.Type(hc.Type),
				Address:      rs.Address,
				Port:         rs.Port,
				CheckAddress: hc.Address,
				CheckPort:    hc.Port,
				Interval:     hc.Interval.Duration,
				Timeout:      hc.Timeout.Duration,
				Rise:         hc.Rise,
				Fall:         hc.Fall,
				Method:       hc.Method,
				Path:         hc.Path,
				Host:         hc.Host,
				SNI:          hc.SNI,
				ExpectStatus: hc.ExpectStatus,
				ExpectBody:   hc.ExpectBody,
				TLSVerify:    *hc.TLSVerify,
				Send:         hc.Send,
				Expect:       hc.Expect,
				Command:      hc.Command,
				QueryName:    hc.QueryName,
				QueryType:    hc.QueryType,
				DNSTransport: hc.DNSTransport,
				ExpectRcode:  hc.ExpectRcode,
				ExpectAnswer: hc.ExpectAnswer,
				HeloName:     hc.HeloName,
				StartTLS:     hc.StartTLS,
			}
		}
	}
	return out
}

func portString(p int) string { return strconv.Itoa(p) }
