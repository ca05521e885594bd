package config

import (
	"net/netip"
	"reflect"
	"strings"
)

// FindVirtualServer returns the virtual server called name, or nil. The
// result points into c.
func (c *Config) FindVirtualServer(name string) *VirtualServer {
	for i := range c.VirtualServers {
		if c.VirtualServers[i].Name == name {
			return &c.VirtualServers[i]
		}
	}
	return nil
}

// FindRealServer returns the real server called name, or nil. The result
// points into vs.
func (vs *VirtualServer) FindRealServer(name string) *RealServer {
	for i := range vs.RealServers {
		if vs.RealServers[i].Name == name {
			return &vs.RealServers[i]
		}
	}
	return nil
}

// HasVRRP reports whether any VRRP instance is configured ([vrrp] or
// [[vrrp_instance]]).
func (c *Config) HasVRRP() bool { return c.VRRP != nil || len(c.VRRPInstances) > 0 }

// Instances returns the VRRP instances: [vrrp] alone, or every
// [[vrrp_instance]] in file order. The results point into c.
func (c *Config) Instances() []*VRRP {
	if c.VRRP != nil {
		return []*VRRP{c.VRRP}
	}
	out := make([]*VRRP, 0, len(c.VRRPInstances))
	for i := range c.VRRPInstances {
		out = append(out, &c.VRRPInstances[i])
	}
	return out
}

// SyncGroupOf returns the name of the sync group instance name belongs to,
// or "".
func (c *Config) SyncGroupOf(name string) string {
	for _, g := range c.VRRPSyncGroups {
		for _, m := range g.Instances {
			if m == name {
				return g.Name
			}
		}
	}
	return ""
}

// VIPs returns the addresses the VRRP instance owns: vrrp.vips as written
// when set, else every virtual server's VIP, in config order without
// duplicates. With [[vrrp_instance]] it is the first instance's (see
// InstanceVIPs).
func (c *Config) VIPs() []string {
	var v *VRRP
	if in := c.Instances(); len(in) > 0 {
		v = in[0]
	}
	return c.InstanceVIPs(v)
}

// InstanceVIPs returns the addresses instance v (nil: none) owns: its vips
// as written when set, else every virtual server's VIP (an instance without
// vips is only valid alone), in config order without duplicates.
func (c *Config) InstanceVIPs(v *VRRP) []string {
	var in []string
	if v != nil && len(v.VIPs) > 0 {
		in = v.VIPs
	} else {
		for _, vs := range c.VirtualServers {
			if vs.VIP != "" {
				in = append(in, vs.VIP)
			}
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		k := s
		// 2001:DB8::1 and 2001:db8::1 are the same address.
		if a, err := netip.ParseAddr(s); err == nil {
			k = a.String()
		} else if p, err := netip.ParsePrefix(s); err == nil {
			k = p.String()
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// Clone returns a deep copy of c: nothing in it shares memory with c.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	return deepCopy(reflect.ValueOf(c)).Interface().(*Config)
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(deepCopy(v.Elem()))
		return n
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			n.Index(i).Set(deepCopy(v.Index(i)))
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			n.SetMapIndex(deepCopy(it.Key()), deepCopy(it.Value()))
		}
		return n
	case reflect.Struct:
		n := reflect.New(v.Type()).Elem()
		n.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if n.Field(i).CanSet() {
				n.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return n
	}
	return v
}

// Suggest returns the candidate closest to name by edit distance (ignoring
// case), or "" when none is close enough to be a likely typo. lbctl and the
// console use it for "no real server rs9; did you mean rs1?".
func Suggest(name string, candidates []string) string {
	if name == "" {
		return ""
	}
	// Allow about one typo per three characters, at least one.
	limit := max(1, len([]rune(name))/3)
	best, bestD := "", limit+1
	lname := strings.ToLower(name)
	for _, c := range candidates {
		d := editDistance(lname, strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b,
// in runes: insertions, deletions, substitutions and swaps of two adjacent
// letters each cost one, so the common typo "wbe" is one edit from "web".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	rows := [3][]int{make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		pp, prev, cur := rows[0], rows[1], rows[2]
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		rows[0], rows[1], rows[2] = prev, cur, pp
	}
	return rows[1][len(rb)]
}
