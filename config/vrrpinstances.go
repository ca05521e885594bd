package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// vipAddr is the address of a VIP as written ("192.0.2.10" or
// "192.0.2.10/24"); ok is false when it is neither.
func vipAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), true
	}
	return netip.Addr{}, false
}

// instanceFamily is the address family an instance advertises in: that of
// its first VIP (as the vrrp package decides), else of its first unicast
// peer, else IPv4.
func instanceFamily(r *VRRP) string {
	for _, s := range r.VIPs {
		if a, ok := vipAddr(s); ok {
			return familyOf(a.Unmap())
		}
	}
	for _, s := range r.UnicastPeers {
		if a, err := netip.ParseAddr(s); err == nil {
			return familyOf(a.Unmap())
		}
	}
	return "inet"
}

// vrrpInstances checks [[vrrp_instance]] and [[vrrp_sync_group]]: each
// instance on its own as [vrrp] is checked, then what only several
// instances can get wrong.
func (v *validator) vrrpInstances(c *Config) {
	if len(c.VRRPInstances) > 0 && c.VRRP != nil {
		v.addf("vrrp_instance[0]", "[vrrp] and [[vrrp_instance]] cannot be used together: write every instance as [[vrrp_instance]] with a name")
	}
	names := map[string]int{}
	vrids := map[string]int{}
	vipOwner := map[netip.Addr]int{}
	noVIPs := -1
	for i := range c.VRRPInstances {
		r := &c.VRRPInstances[i]
		k := indexKey("vrrp_instance", i)
		v.vrrp(k, r)
		v.name(k+".name", r.Name)
		if r.Name != "" {
			if j, dup := names[r.Name]; dup {
				v.addf(k+".name", "duplicate instance name %q (also vrrp_instance[%d])", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		if r.VRID >= MinVRID && r.VRID <= MaxVRID && r.Interface != "" {
			id := r.Interface + "/" + instanceFamily(r) + "/" + strconv.Itoa(r.VRID)
			if j, dup := vrids[id]; dup {
				v.addf(k+".vrid", "vrid %d is already used on %s (%s) by instance %q: a VRID is unique per interface and address family",
					r.VRID, r.Interface, familyName(instanceFamily(r)), c.VRRPInstances[j].Name)
			} else {
				vrids[id] = i
			}
		}
		if len(r.VIPs) == 0 {
			noVIPs = i
		}
		for j, s := range r.VIPs {
			a, ok := vipAddr(s)
			if !ok {
				continue // reported by vrrp
			}
			a = a.Unmap()
			if o, dup := vipOwner[a]; dup && o != i {
				v.addf(indexKey(k+".vips", j), "VIP %s is already owned by instance %q: a VIP belongs to one instance", a, c.VRRPInstances[o].Name)
			} else {
				vipOwner[a] = i
			}
		}
	}
	if n := len(c.VRRPInstances); n > 0 && (n > 1 || noVIPs < 0) {
		var uncovered []string
		seen := map[netip.Addr]bool{}
		for _, vs := range c.VirtualServers {
			a, err := netip.ParseAddr(vs.VIP)
			if err != nil || seen[a] {
				continue
			}
			seen[a] = true
			if _, ok := vipOwner[a]; !ok {
				uncovered = append(uncovered, a.String())
			}
		}
		switch {
		case noVIPs >= 0 && n > 1:
			msg := "vips is required with several instances (an instance without vips owns every VIP; only a lone instance may)"
			if len(uncovered) > 0 {
				msg += "; not owned by any instance: " + strings.Join(uncovered, ", ")
			}
			v.addf(indexKey("vrrp_instance", noVIPs)+".vips", "%s", msg)
		case len(uncovered) > 0:
			v.addf("vrrp_instance[0]", "no instance owns the VIP of every virtual server: add %s to the vips of an instance", strings.Join(uncovered, ", "))
		}
	}
	v.syncGroups(c, names)
}

func (v *validator) syncGroups(c *Config, instances map[string]int) {
	if len(c.VRRPSyncGroups) > 0 && len(c.VRRPInstances) == 0 {
		v.addf("vrrp_sync_group[0]", "needs [[vrrp_instance]] tables (a sync group joins named instances)")
		return
	}
	names := map[string]int{}
	member := map[string]string{}
	for i, g := range c.VRRPSyncGroups {
		k := indexKey("vrrp_sync_group", i)
		v.name(k+".name", g.Name)
		if g.Name != "" {
			if j, dup := names[g.Name]; dup {
				v.addf(k+".name", "duplicate sync group name %q (also vrrp_sync_group[%d])", g.Name, j)
			} else {
				names[g.Name] = i
			}
		}
		if len(g.Instances) == 0 {
			v.addf(k+".instances", "is required (the names of the instances that fail over together)")
		}
		for j, m := range g.Instances {
			mk := indexKey(k+".instances", j)
			if _, ok := instances[m]; !ok {
				v.addf(mk, "no vrrp_instance is named %q", m)
				continue
			}
			if o, dup := member[m]; dup {
				v.addf(mk, "instance %q is already in sync group %q: an instance is in at most one group", m, o)
				continue
			}
			member[m] = g.Name
		}
	}
}
