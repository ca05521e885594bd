package webui

import (
	"net/http"
	"testing"

	"lbd/api"
)

// The console words addresses with the api display helpers, as lbctl does:
// lbctl's TestStatus expects the same "[2001:db8::53]:53/udp" for the same
// service.
func TestAddressesAsLbctl(t *testing.T) {
	h := newHarnessConfig(t, testConfig(t, "")+`
[[virtual_server]]
name = "dns6"
vip = "2001:db8::53"
port = 53
protocol = "udp"
real_server = [{name = "ns1", address = "2001:db8::1"}]

[[virtual_server]]
name = "marked"
fwmark = 5
real_server = [{name = "m1", address = "10.0.0.21", port = 80}]
`)
	c := h.login()
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/status", []string{"[2001:db8::53]:53/udp", "fwmark 5", "[2001:db8::1]:53"}},
		{"/services", []string{"[2001:db8::53]:53/udp", "fwmark 5"}},
		{"/vs/dns6", []string{"[2001:db8::1]:53"}},
		{"/vs/marked/monitoring", []string{"fwmark 5"}},
	} {
		r := c.get(tc.path)
		mustStatus(t, r, http.StatusOK)
		mustContain(t, r.body, tc.want...)
	}
	if got := api.ServiceAddress("2001:db8::53", 53, "udp", 0); got != "[2001:db8::53]:53/udp" {
		t.Fatalf("api.ServiceAddress = %q", got)
	}
}
