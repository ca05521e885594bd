package config

import "testing"

// The editors' new objects carry the same values a file that omits those
// keys gets.
func TestNewObjectsAgreeWithDefaults(t *testing.T) {
	c, err := Parse("min.toml", []byte(`[global]
interface = "eth0"
[vrrp]
vrid = 51
priority = 100
vips = ["192.0.2.1"]
[[virtual_server]]
name = "web"
vip = "192.0.2.1"
port = 80
  [virtual_server.health_check]
  type = "tcp"
  [[virtual_server.real_server]]
  name = "a"
  address = "192.0.2.10"
`))
	if err != nil {
		t.Fatal(err)
	}
	vs, nvs := c.VirtualServers[0], NewVirtualServer()
	if vs.Protocol != nvs.Protocol || vs.Scheduler != nvs.Scheduler || vs.Quorum != nvs.Quorum || *vs.Active != *nvs.Active {
		t.Errorf("NewVirtualServer %+v, parsed %+v", nvs, vs)
	}
	rs, nrs := vs.RealServers[0], NewRealServer()
	if *rs.Weight != *nrs.Weight || *rs.Active != *nrs.Active {
		t.Errorf("NewRealServer weight %d active %v, parsed %d %v", *nrs.Weight, *nrs.Active, *rs.Weight, *rs.Active)
	}
	hc, nhc := vs.HealthCheck, NewHealthCheck("tcp")
	if hc.Rise != nhc.Rise || hc.Fall != nhc.Fall || hc.Interval != nhc.Interval || hc.Timeout != nhc.Timeout {
		t.Errorf("NewHealthCheck %+v, parsed %+v", nhc, hc)
	}
	v, nv := c.VRRP, NewVRRP()
	if v.Version != nv.Version || v.GARPCount != nv.GARPCount || v.AdvertInterval != nv.AdvertInterval || *v.Preempt != *nv.Preempt {
		t.Errorf("NewVRRP %+v, parsed %+v", nv, v)
	}
}
