package webui

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"lbd/api"
)

// warmSync is a healthy pair's sync state: both daemons running for two
// hours, warm. The daemons are listed backup first on purpose: the screens
// show master first whatever the order.
func warmSync() *api.Sync {
	since := time.Now().Add(-2 * time.Hour)
	return &api.Sync{
		Interface: "eth1", SyncID: 51, Group: "224.0.0.81", Port: 8848,
		Daemons: []api.SyncDaemon{
			{Role: "backup", Running: true, Since: since},
			{Role: "master", Running: true, Since: since},
		},
		Warm: true, WarmReason: "backup daemon running for 2h0m0s of 15s", WarmUp: 15 * time.Second,
		SyncedConns: 1234, LocalConns: 56,
	}
}

// syncCase is one sync state and what the screens must (not) show for it.
type syncCase struct {
	name     string
	sync     func() *api.Sync
	line     []string // in the status screen's sync line
	lineNot  []string
	redund   []string // in the redundancy screen's sync section
	redunNot []string
}

func syncCases() []syncCase {
	return []syncCase{
		{
			name: "running and warm",
			sync: warmSync,
			line: []string{`class="sync-line ok"`, `id="sync-state-master"`, "master ✓", "backup ✓",
				`id="sync-warm">warm</span>`, "<b>1,234</b> synced / <b>56</b> local"},
			lineNot: []string{"⚠", "not warm", "stopped", "guard:", "Connection sync: off"},
			redund: []string{"<code>eth1</code>", "<dt>Sync ID</dt><dd>51</dd>", "<code>224.0.0.81:8848</code>",
				`id="sync-daemon-master"`, `id="sync-daemon-backup"`, `<span class="badge ok">running</span>`,
				"has learned the peer's connection table and may preempt", "warm-up 15s",
				"<b>1,234</b> synced from the peer", "<b>56</b> scheduled by this director", "ago)"},
			redunNot: []string{`<span class="badge bad">stopped</span>`, "Handover guard", `id="sync-off"`},
		},
		{
			name: "backup daemon stopped with an error",
			sync: func() *api.Sync {
				s := warmSync()
				s.Daemons[0] = api.SyncDaemon{Role: "backup", Error: "start backup daemon on eth1: address already in use"}
				s.Warm, s.WarmReason = false, "backup daemon not running"
				return s
			},
			line: []string{`class="sync-line bad"`, "master ✓", "backup ✗ stopped", `id="sync-warm">not warm</span>`,
				"⚠ The backup sync daemon is not running: start backup daemon on eth1: address already in use.",
				"This director is not learning the peer&#39;s connections",
				"⚠ Not warm: backup daemon not running."},
			lineNot: []string{"backup ✓", `class="sync-line ok"`},
			redund: []string{`<span class="badge bad">stopped</span>`, "address already in use",
				`<span class="badge warn">not warm</span> backup daemon not running — holds back preemption`},
		},
		{
			name: "master daemon stopped",
			sync: func() *api.Sync {
				s := warmSync()
				s.Daemons[1] = api.SyncDaemon{Role: "master"}
				return s
			},
			line: []string{`class="sync-line bad"`, "master ✗ stopped", "backup ✓",
				"⚠ The master sync daemon is not running. The peer is not learning this director&#39;s connections"},
			lineNot: []string{"master ✓", "Not warm"},
			redund:  []string{`<span class="badge bad">stopped</span>`},
		},
		{
			name: "not warm yet",
			sync: func() *api.Sync {
				s := warmSync()
				s.Warm, s.WarmReason = false, "backup daemon running for 3s of 15s"
				s.SyncedConns = 0
				return s
			},
			line: []string{`class="sync-line warn"`, "master ✓", "backup ✓", `id="sync-warm">not warm</span>`,
				"⚠ Not warm: backup daemon running for 3s of 15s. This director does not preempt",
				"<b>0</b> synced / <b>56</b> local"},
			lineNot: []string{"stopped", `id="sync-warm">warm</span>`},
			redund:  []string{`<span class="badge warn">not warm</span> backup daemon running for 3s of 15s — holds back preemption`},
		},
		{
			name: "takeover guard quiet",
			sync: func() *api.Sync {
				s := warmSync()
				s.Guard = "quiet"
				return s
			},
			line:   []string{`class="sync-line ok"`, `id="sync-guard"`, "guard: quiet"},
			redund: []string{"Handover guard", `<span class="badge info">quiet</span> just became master`},
		},
		{
			name: "handover guard hold, IPv6 group",
			sync: func() *api.Sync {
				s := warmSync()
				s.Guard, s.Group = "hold", "ff02::81"
				return s
			},
			line:   []string{"guard: hold"},
			redund: []string{"<code>[ff02::81]:8848</code>", `<span class="badge info">hold</span> resigning: new connections wait`},
		},
		{
			name: "no daemon reported",
			sync: func() *api.Sync {
				s := warmSync()
				s.Daemons, s.Warm, s.WarmReason = nil, false, "no backup daemon"
				return s
			},
			line:    []string{`class="sync-line bad"`, `<span class="badge bad">no daemon running</span>`, "⚠ Not warm: no backup daemon."},
			lineNot: []string{"sync-state-"},
			redund:  []string{"No sync daemon is wanted or running."},
		},
		{
			name:     "off",
			sync:     func() *api.Sync { return nil },
			line:     []string{`class="sync-line off"`, "Connection sync: off", "do not survive a failover"},
			lineNot:  []string{"sync-state-", "synced", "warm"},
			redund:   []string{`id="sync-off"`, "Connection sync: off", "<code>[sync]</code>"},
			redunNot: []string{"sync-daemon-", "Sync ID"},
		},
	}
}

var syncLineRe = regexp.MustCompile(`(?s)<div class="sync-line[^"]*" id="sync-line">.*?</div>`)
var syncSectionRe = regexp.MustCompile(`(?s)<section class="card" id="sync">.*?</section>`)

func syncPart(t *testing.T, re *regexp.Regexp, page, body string) string {
	t.Helper()
	m := re.FindAllString(body, -1)
	if len(m) != 1 {
		t.Fatalf("%s: %d matches of %s, want 1:\n%s", page, len(m), re, body)
	}
	return m[0]
}

func mustLack(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			t.Errorf("%s shows %q:\n%s", what, sub, s)
		}
	}
}

func TestSyncOnStatusScreen(t *testing.T) {
	for _, tc := range syncCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.d.setSync(tc.sync())
			c := h.login()
			for _, p := range []string{"/status", "/status/live"} {
				r := c.get(p)
				mustStatus(t, r, http.StatusOK)
				line := syncPart(t, syncLineRe, p, r.body)
				mustContain(t, line, tc.line...)
				mustLack(t, p+" sync line", line, tc.lineNot...)
				if i, j := strings.Index(line, "sync-state-master"), strings.Index(line, "sync-state-backup"); tc.sync() != nil && tc.sync().Daemons != nil && (i < 0 || j < i) {
					t.Errorf("%s: master daemon not shown before backup:\n%s", p, line)
				}
				// The line sits in the Redundancy card, after VRRP.
				card, _, _ := strings.Cut(r.body[max(strings.Index(r.body, `<div class="card" id="vrrp">`), 0):], "</section>")
				if !strings.Contains(card, "VRID 51") || !strings.Contains(card, `id="sync-line"`) {
					t.Errorf("%s: sync line not in the Redundancy card:\n%s", p, card)
				}
			}
		})
	}
}

func TestSyncOnRedundancyScreen(t *testing.T) {
	for _, tc := range syncCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.d.setSync(tc.sync())
			c := h.login()
			r := c.get("/redundancy")
			mustStatus(t, r, http.StatusOK)
			sec := syncPart(t, syncSectionRe, "/redundancy", r.body)
			mustContain(t, sec, "<h2>Connection sync</h2>")
			mustContain(t, sec, tc.redund...)
			mustLack(t, "redundancy sync section", sec, tc.redunNot...)
			// The compact line is repeated at the top of the section.
			line := syncPart(t, syncLineRe, "/redundancy", r.body)
			mustContain(t, line, tc.line...)
			// The VRRP head and the form are still there.
			mustContain(t, r.body, `<span class="role role-master">MASTER</span>`, `id="vrrp-form"`, `id="f-vrid" name="vrid" value="51"`)
			if m := inlineRe.FindString(r.body); m != "" {
				t.Errorf("inline script/style %q", m)
			}
		})
	}
}

// A refused form is drawn again with the sync section too.
func TestSyncOnRedundancyFormError(t *testing.T) {
	h := newHarness(t)
	h.d.setSync(warmSync())
	c := h.login()
	v := c.formOf("/redundancy")
	r := c.post("/redundancy", with(v, "enabled", "on", "version", "3", "vrid", "51", "priority", "300", "advert_interval", "1s", "interface", "eth0", "garp_count", "5", "garp_interval", "100ms", "notify_timeout", "10s", "preempt", "on"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	mustContain(t, syncPart(t, syncSectionRe, "/redundancy", r.body), `id="sync-daemon-master"`, "224.0.0.81:8848")
}

// Whatever the kernel or the director puts in a string is text, never markup.
func TestSyncEscaped(t *testing.T) {
	h := newHarness(t)
	s := warmSync()
	s.Interface = `eth1"><b>x`
	s.Daemons[0] = api.SyncDaemon{Role: `backup<i>`, Error: `<script>alert(1)</script>`}
	s.Warm, s.WarmReason, s.Guard = false, `<img src=x onerror=alert(2)>`, `<u>odd</u>`
	h.d.setSync(s)
	c := h.login()
	for _, p := range []string{"/status", "/redundancy"} {
		body := c.get(p).body
		mustLack(t, p, body, "<script>alert", "<img src=x", "<u>odd", `eth1"><b>`, "backup<i>")
		mustContain(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "guard: &lt;u&gt;odd&lt;/u&gt;")
	}
}

// The JSON API hands the director's sync state through unchanged, and
// leaves it out when sync is off.
func TestAPIStatusSync(t *testing.T) {
	h := newHarness(t)
	want := warmSync()
	want.Daemons[0].Running, want.Daemons[0].Since, want.Daemons[0].Error = false, time.Time{}, "no such device"
	want.Guard = "hold"
	h.d.setSync(want)
	var st api.Status
	wantCode(t, h.apiCall("GET", "/status", "", "", &st), http.StatusOK)
	got, _ := json.Marshal(st.Sync)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("sync through the API:\n got %s\nwant %s", got, exp)
	}

	h.d.setSync(nil)
	var raw map[string]json.RawMessage
	wantCode(t, h.apiCall("GET", "/status", "", "", &raw), http.StatusOK)
	if _, ok := raw["sync"]; ok {
		t.Fatalf("sync off, but the status has %q: %s", "sync", raw["sync"])
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1234: "1,234", 56789: "56,789",
		123456: "123,456", 1234567: "1,234,567", -1234: "-1,234", -12: "-12"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
