package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"lbd/balancer"
	"lbd/config"
)

// hostChecks are the facts about the machine lbd runs on that a
// configuration depends on: its interfaces and the kernel's IPVS. They are
// not errors in the file (a configuration is often checked on another
// machine: a laptop, CI, the peer director before a copy), so `lbd -t`
// prints them as warnings and still exits 0; the daemon logs them once at
// start-up at ERROR.
type hostChecks struct {
	// interfaceExists reports whether this host has the named interface.
	interfaceExists func(name string) bool
	// openIPVS opens and closes the kernel's IPVS; an error wrapping
	// balancer.ErrUnavailable means the kernel has none.
	openIPVS func() error
}

func realHostChecks() hostChecks {
	return hostChecks{
		interfaceExists: func(name string) bool { _, err := net.InterfaceByName(name); return err == nil },
		openIPVS: func() error {
			k, err := balancer.Open()
			if err != nil {
				return err
			}
			return k.Close()
		},
	}
}

// missingInterfaces names each configured interface this host lacks once,
// with the keys that name it (written or inherited), in file order.
func (h hostChecks) missingInterfaces(cfg *config.Config) []string {
	var names []string
	keys := map[string][]string{}
	add := func(key, name string) {
		if name == "" {
			return
		}
		if _, seen := keys[name]; !seen {
			names = append(names, name)
		}
		keys[name] = append(keys[name], key)
	}
	add("global.interface", cfg.Global.Interface)
	if cfg.VRRP != nil {
		add("vrrp.interface", cfg.VRRP.Interface)
		for i, ti := range cfg.VRRP.TrackInterfaces {
			add(fmt.Sprintf("vrrp.track_interface[%d]", i), ti.Name)
		}
	}
	for j, v := range cfg.VRRPInstances {
		k := fmt.Sprintf("vrrp_instance[%d]", j)
		add(k+".interface", v.Interface)
		for i, ti := range v.TrackInterfaces {
			add(fmt.Sprintf("%s.track_interface[%d]", k, i), ti.Name)
		}
	}
	if s, on := cfg.SyncSettings(); on {
		add("sync.interface", s.Interface)
	}
	var out []string
	for _, n := range names {
		if !h.interfaceExists(n) {
			out = append(out, fmt.Sprintf("interface %q (%s) does not exist on this host", n, strings.Join(keys[n], ", ")))
		}
	}
	return out
}

// ipvsProblem says what a kernel without IPVS means for cfg; "" when the
// kernel has it.
func (h hostChecks) ipvsProblem(cfg *config.Config) string {
	err := h.openIPVS()
	switch {
	case err == nil:
		return ""
	case !errors.Is(err, balancer.ErrUnavailable):
		return fmt.Sprintf("cannot tell whether this kernel has IPVS: %v", err)
	case len(cfg.VirtualServers) > 0:
		return fmt.Sprintf("IPVS not available in this kernel: lbd does not start here with %d virtual servers (%v)", len(cfg.VirtualServers), err)
	default:
		return fmt.Sprintf("IPVS not available in this kernel: lbd runs VRRP only here, and refuses a virtual server added later (%v)", err)
	}
}

// warnings is everything -t reports about the host.
func (h hostChecks) warnings(cfg *config.Config) []string {
	out := h.missingInterfaces(cfg)
	if p := h.ipvsProblem(cfg); p != "" {
		out = append(out, p)
	}
	return out
}
