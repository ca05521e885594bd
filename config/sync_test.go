package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestSyncDefaults(t *testing.T) {
	c := mustParse(t, "[global]\ninterface = \"eth3\"\n[vrrp]\ninterface = \"eth2\"\nvrid = 42\npriority = 100\n")
	s := c.Sync
	if s == nil {
		t.Fatal("[vrrp] without [sync]: no sync defaults")
	}
	if s.Enabled == nil || !*s.Enabled || s.Interface != "eth2" || s.ID == nil || *s.ID != 42 ||
		s.Group != "224.0.0.81" || s.Group6 != "" || s.Port != 8848 || s.TTL != 1 || s.MaxPacketLen != 0 ||
		s.RefreshPeriod.Duration != 10*time.Second || s.WarmUp.Duration != 15*time.Second ||
		s.HandoverHold.Duration != 200*time.Millisecond || s.TakeoverQuiet.Duration != 4*time.Second {
		t.Errorf("sync defaults: %+v", *s)
	}
	got, on := c.SyncSettings()
	want := SyncSettings{
		Interface: "eth2", ID: 42, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1,
		RefreshPeriod: 10 * time.Second, WarmUp: 15 * time.Second,
		HandoverHold: 200 * time.Millisecond, TakeoverQuiet: 4 * time.Second,
	}
	if !on || got != want {
		t.Errorf("SyncSettings() = %+v, %v\nwant %+v, true", got, on, want)
	}
	roundTrip(t, c)
}

func TestSyncSettings(t *testing.T) {
	tests := []struct {
		name string
		src  string
		on   bool
		want SyncSettings
	}{
		{"no vrrp, no sync", vs, false, SyncSettings{}},
		{"turned off", syncVRRP + "[sync]\nenabled = false\n", false, SyncSettings{}},
		{"no vrrp: off unless enabled", "[global]\ninterface = \"eth0\"\n[sync]\nport = 9000\n", false, SyncSettings{}},
		// Without [vrrp] the id is 0: a backup daemon with id 0 accepts
		// every master.
		{"enabled without vrrp", "[global]\ninterface = \"eth0\"\n[sync]\nenabled = true\n", true, SyncSettings{
			Interface: "eth0", ID: 0, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1,
			RefreshPeriod: 10 * time.Second, WarmUp: 15 * time.Second, HandoverHold: 200 * time.Millisecond, TakeoverQuiet: 4 * time.Second,
		}},
		{"interface from global through vrrp", "[global]\ninterface = \"eth3\"\n[vrrp]\nvrid = 9\npriority = 100\n", true, SyncSettings{
			Interface: "eth3", ID: 9, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1,
			RefreshPeriod: 10 * time.Second, WarmUp: 15 * time.Second, HandoverHold: 200 * time.Millisecond, TakeoverQuiet: 4 * time.Second,
		}},
		{"warm_up follows refresh_period", syncVRRP + "[sync]\nrefresh_period = \"30s\"\n", true, SyncSettings{
			Interface: "eth0", ID: 7, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1,
			RefreshPeriod: 30 * time.Second, WarmUp: 35 * time.Second, HandoverHold: 200 * time.Millisecond, TakeoverQuiet: 4 * time.Second,
		}},
		{"every key", syncVRRP + `[sync]
enabled = true
interface = "sync0"
id = 0
group = "239.1.2.3"
port = 8849
ttl = 2
max_packet_len = 1400
refresh_period = "5s"
warm_up = "0s"
handover_hold = "0s"
takeover_quiet = "1m"
`, true, SyncSettings{
			Interface: "sync0", ID: 0, Group: netip.MustParseAddr("239.1.2.3"), Port: 8849, TTL: 2, MaxPacketLen: 1400,
			RefreshPeriod: 5 * time.Second, WarmUp: 0, HandoverHold: 0, TakeoverQuiet: time.Minute,
		}},
		{"group6", syncVRRP + "[sync]\ninterface = \"sync0\"\ngroup6 = \"ff02::81\"\n", true, SyncSettings{
			Interface: "sync0", ID: 7, Group: netip.MustParseAddr("ff02::81"), Port: 8848, TTL: 1,
			RefreshPeriod: 10 * time.Second, WarmUp: 15 * time.Second, HandoverHold: 200 * time.Millisecond, TakeoverQuiet: 4 * time.Second,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.src)
			got, on := c.SyncSettings()
			if on != tt.on || got != tt.want {
				t.Errorf("SyncSettings() = %+v, %v\nwant %+v, %v", got, on, tt.want, tt.on)
			}
			roundTrip(t, c)
		})
	}

	// group6 replaces the default IPv4 group rather than joining it.
	c := mustParse(t, syncVRRP+"[sync]\ngroup6 = \"ff02::81\"\n")
	if c.Sync.Group != "" || c.Sync.Group6 != "ff02::81" {
		t.Errorf("group6: Group %q, Group6 %q", c.Sync.Group, c.Sync.Group6)
	}
	if c := mustParse(t, vs); c.Sync != nil {
		t.Errorf("no [vrrp] and no [sync]: Sync = %+v, want nil", *c.Sync)
	}
	if _, on := (&Config{}).SyncSettings(); on {
		t.Error("a config without [sync] has sync on")
	}
}

func TestSyncEncode(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the [sync] part of the encoding, "" for none
	}{
		// The defaults recreate [sync] whenever [vrrp] is set.
		{"defaults with vrrp", syncVRRP, ""},
		{"written defaults with vrrp", syncVRRP + "[sync]\nenabled = true\ninterface = \"eth0\"\nid = 7\ngroup = \"224.0.0.81\"\nport = 8848\nttl = 1\n" +
			"max_packet_len = 0\nrefresh_period = \"10s\"\nwarm_up = \"15s\"\nhandover_hold = \"200ms\"\ntakeover_quiet = \"4s\"\n", ""},
		// Without [vrrp] an empty [sync] is kept: leaving it out would
		// drop the table.
		{"empty without vrrp", "[sync]\n", "\n[sync]\n"},
		{"enabled without vrrp", "[global]\ninterface = \"eth0\"\n[sync]\nenabled = true\n", "\n[sync]\nenabled = true\n"},
		{"off", syncVRRP + "[sync]\nenabled = false\n", "\n[sync]\nenabled = false\n"},
		{"zeros that are settings", syncVRRP + "[sync]\nid = 0\nwarm_up = \"0s\"\nhandover_hold = \"0s\"\ntakeover_quiet = \"0s\"\n",
			"\n[sync]\nid = 0\nwarm_up = \"0s\"\nhandover_hold = \"0s\"\ntakeover_quiet = \"0s\"\n"},
		{"group6 alone", syncVRRP + "[sync]\ngroup6 = \"ff02::81\"\n", "\n[sync]\ngroup6 = \"ff02::81\"\n"},
		{"warm_up differs from the derived default", syncVRRP + "[sync]\nrefresh_period = \"20s\"\nwarm_up = \"15s\"\n",
			"\n[sync]\nrefresh_period = \"20s\"\nwarm_up = \"15s\"\n"},
		{"warm_up is the derived default", syncVRRP + "[sync]\nrefresh_period = \"20s\"\nwarm_up = \"25s\"\n",
			"\n[sync]\nrefresh_period = \"20s\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := string(roundTrip(t, mustParse(t, tt.src)))
			got := ""
			if i := strings.Index(data, "\n[sync]\n"); i >= 0 {
				got = data[i:]
				if j := strings.Index(got[1:], "\n\n"); j >= 0 {
					got = got[:j+2]
				}
			}
			if got != tt.want {
				t.Errorf("[sync] encoded as\n%q\nwant\n%q\nwhole encoding:\n%s", got, tt.want, data)
			}
		})
	}
}

// A console edit builds [sync] in memory; Normalize gives it the file's
// defaults and rules. Zero durations where 0 is a setting (warm_up,
// handover_hold, takeover_quiet) are taken as written.
func TestSyncNormalize(t *testing.T) {
	c := mustParse(t, syncVRRP)
	c.Sync = &Sync{Interface: "sync0", Group6: "ff02::81", WarmUp: Duration{20 * time.Second}, TakeoverQuiet: Duration{4 * time.Second}}
	n, data, err := Normalize(c)
	if err != nil {
		t.Fatalf("Normalize: %v\n%s", err, data)
	}
	got, on := n.SyncSettings()
	want := SyncSettings{
		Interface: "sync0", ID: 7, Group: netip.MustParseAddr("ff02::81"), Port: 8848, TTL: 1,
		RefreshPeriod: 10 * time.Second, WarmUp: 20 * time.Second, HandoverHold: 0, TakeoverQuiet: 4 * time.Second,
	}
	if !on || got != want {
		t.Errorf("SyncSettings() = %+v, %v\nwant %+v", got, on, want)
	}

	// Setting group6 on a parsed config without clearing group writes
	// both, which the rules refuse, at group6's line of the canonical text.
	c = mustParse(t, syncVRRP+"[sync]\ngroup = \"239.0.0.1\"\n")
	c.Sync.Group6 = "ff02::81"
	_, data, err = Normalize(c)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Key != "sync.group6" {
		t.Fatalf("Normalize with group and group6 = %v", err)
	}
	if lines := strings.Split(string(data), "\n"); ps[0].Line < 1 || !strings.HasPrefix(lines[ps[0].Line-1], "group6 = ") {
		t.Errorf("problem %+v does not point at group6 in\n%s", ps[0], data)
	}
}

// A [sync] problem always has a line the operator wrote: the key itself
// or, for a missing key, the [sync] header, never line 0.
func TestSyncProblemLines(t *testing.T) {
	for _, src := range []string{
		"[sync]\nenabled = true\n",
		"# x\nsync.enabled = true\n",
		"sync = { enabled = true }\n",
		"[vrrp]\nvrid = 7\npriority = 100\n",
		"[global]\ninterface = \"a b\"\n[vrrp]\nvrid = 300\npriority = 100\n[sync]\nrefresh_period = \"1h\"\n",
	} {
		_, err := Parse("t.toml", []byte(src))
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("Parse(%q) = %v, want problems", src, err)
		}
		for _, p := range ps {
			if p.Line < 1 {
				t.Errorf("Parse(%q): problem without a line: %v", src, p)
			}
		}
	}
}
