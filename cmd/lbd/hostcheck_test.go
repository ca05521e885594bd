package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"lbd/balancer"
)

const hostConfig = `
[global]
interface = "eth7"
[vrrp]
vrid = 51
priority = 150
interface = "eth8"
vips = ["192.0.2.100"]
  [[vrrp.track_interface]]
  name = "eth7"
  weight = 10
[sync]
interface = "eth9"
[[virtual_server]]
name = "web"
vip = "192.0.2.100"
port = 80
  [[virtual_server.real_server]]
  name = "rs1"
  address = "192.0.2.11"
`

func checkWith(t *testing.T, body string, host hostChecks) (code int, stdout, stderr string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lbd.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code = checkConfig(p, host, &out, &errb)
	return code, out.String(), errb.String()
}

func fakeHost(ifaces []string, ipvsErr error) hostChecks {
	return hostChecks{
		interfaceExists: func(n string) bool {
			for _, i := range ifaces {
				if i == n {
					return true
				}
			}
			return false
		},
		openIPVS: func() error { return ipvsErr },
	}
}

// What the host lacks is a warning, never a failure: the file is valid.
func TestCheckWarnsAboutHost(t *testing.T) {
	noIPVS := fmt.Errorf("balancer: %w: load ip_vs", balancer.ErrUnavailable)
	vrrpOnly := strings.Split(hostConfig, "[[virtual_server]]")[0]
	for _, tc := range []struct {
		name string
		body string
		host hostChecks
		warn []string // each a whole line on stderr, in order
	}{
		{"host fits", hostConfig, fakeHost([]string{"eth7", "eth8", "eth9"}, nil), nil},
		{"interfaces missing", hostConfig, fakeHost([]string{"eth8"}, nil), []string{
			`warning: interface "eth7" (global.interface, vrrp.track_interface[0]) does not exist on this host`,
			`warning: interface "eth9" (sync.interface) does not exist on this host`,
		}},
		{"no IPVS with virtual servers", hostConfig, fakeHost([]string{"eth7", "eth8", "eth9"}, noIPVS), []string{
			"warning: IPVS not available in this kernel: lbd does not start here with 1 virtual servers (balancer: IPVS is not available in this kernel: load ip_vs)",
		}},
		{"no IPVS, VRRP only", vrrpOnly, fakeHost([]string{"eth7", "eth8", "eth9"}, noIPVS), []string{
			"warning: IPVS not available in this kernel: lbd runs VRRP only here, and refuses a virtual server added later (balancer: IPVS is not available in this kernel: load ip_vs)",
		}},
		{"IPVS unknown", hostConfig, fakeHost([]string{"eth7", "eth8", "eth9"}, syscall.EPERM), []string{
			"warning: cannot tell whether this kernel has IPVS: operation not permitted",
		}},
		{"inherited interface named once", "[global]\ninterface = \"eth7\"\n[vrrp]\nvrid = 1\npriority = 100\nvips = [\"192.0.2.1\"]\n", fakeHost(nil, nil), []string{
			`warning: interface "eth7" (global.interface, vrrp.interface, sync.interface) does not exist on this host`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errb := checkWith(t, tc.body, tc.host)
			if code != 0 || out != "configuration OK\n" {
				t.Fatalf("code=%d stdout=%q stderr=%q, want 0 and configuration OK", code, out, errb)
			}
			want := ""
			if len(tc.warn) > 0 {
				want = strings.Join(tc.warn, "\n") + "\n"
			}
			if errb != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", errb, want)
			}
		})
	}
}

// An invalid file is still exit 1, with no host warnings mixed in.
func TestCheckInvalidNoHostWarnings(t *testing.T) {
	code, _, errb := checkWith(t, hostConfig+"colour = \"blue\"\n", fakeHost(nil, errors.New("unused")))
	if code != 1 || strings.Contains(errb, "warning:") {
		t.Fatalf("code=%d stderr=%q", code, errb)
	}
}
