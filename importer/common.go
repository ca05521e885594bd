package importer

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"lbd/config"
)

// mapper accumulates notes while a tree is mapped.
type mapper struct {
	notes []Note
	extra int // notes beyond maxNotes, counted only
}

// maxNotes bounds the notes of one import: a hostile or huge file costs
// bounded memory, and nobody reads more.
const maxNotes = 1000

func (m *mapper) note(n *node, format string, args ...any) {
	if len(m.notes) >= maxNotes {
		m.extra++
		return
	}
	m.notes = append(m.notes, Note{n.File, n.Line, fmt.Sprintf(format, args...)})
}

// result is the import's outcome, with a last note for notes left out.
func (m *mapper) result(c *config.Config) *Result {
	notes := m.notes
	if len(notes) > maxNotes {
		m.extra += len(notes) - maxNotes
		notes = notes[:maxNotes]
	}
	if m.extra > 0 {
		notes = append(notes, Note{"", 0, fmt.Sprintf("%d more notes left out", m.extra)})
	}
	return &Result{Config: c, Notes: notes}
}

// notMapped reports a statement lbd has no equivalent for.
func (m *mapper) notMapped(n *node, why string) {
	what := n.Key
	if len(n.Args) > 0 {
		what += " " + n.value()
	}
	if why == "" {
		m.note(n, "not mapped: %s", what)
		return
	}
	m.note(n, "not mapped: %s (%s)", what, why)
}

// seconds parses a number of seconds, maybe fractional ("1.5").
func (m *mapper) seconds(n *node) (time.Duration, bool) {
	f, err := strconv.ParseFloat(n.arg(0), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f > 1e9 {
		m.note(n, "not mapped: %s %q is not a number of seconds", n.Key, n.arg(0))
		return 0, false
	}
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond), true
}

func (m *mapper) integer(n *node, lo, hi int) (int, bool) {
	v, err := strconv.Atoi(n.arg(0))
	if err != nil || v < lo || v > hi {
		m.note(n, "not mapped: %s %q is not a number in %d..%d", n.Key, n.arg(0), lo, hi)
		return 0, false
	}
	return v, true
}

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }

func ptr[T any](v T) *T { return &v }

// safeName turns s into an lbd name ([A-Za-z0-9._-], at most 64 bytes).
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64]
	}
	if out == "" {
		out = "unnamed"
	}
	return out
}

// uniqueName returns name, or name-2, name-3 ... when taken.
func uniqueName(name string, taken map[string]bool) string {
	n := name
	for i := 2; taken[n]; i++ {
		suffix := "-" + strconv.Itoa(i)
		base := name
		if len(base)+len(suffix) > 64 {
			base = base[:64-len(suffix)]
		}
		n = base + suffix
	}
	taken[n] = true
	return n
}

// hostPort writes addr:port, [addr]:port for IPv6.
func hostPort(addr string, port int) string {
	if port == 0 {
		return addr
	}
	return netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port)).String()
}

// maskBits turns a netmask (255.255.255.0) or prefix length (24) into a
// prefix length.
func maskBits(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 128 {
		return n, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, false
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for v&0x80000000 != 0 {
		ones++
		v <<= 1
	}
	if v != 0 {
		return 0, false // not contiguous
	}
	return ones, true
}

// clampTimeout keeps a check's timeout below its interval, as lbd requires.
func (m *mapper) clampTimeout(n *node, hc *config.HealthCheck) {
	if hc.Timeout.Duration > 0 && hc.Interval.Duration > 0 && hc.Timeout.Duration >= hc.Interval.Duration {
		t := hc.Interval.Duration * 3 / 4
		m.note(n, "check timeout %v is not shorter than its interval %v (lbd needs it shorter): timeout set to %v", hc.Timeout, hc.Interval, t)
		hc.Timeout = dur(t)
	}
}

// validate parses the encoded config with lbd's own rules.
func (r *Result) validate(name string) ([]byte, error) {
	data, err := config.Encode(r.Config)
	if err != nil {
		return nil, err
	}
	if _, err := config.Parse(name, data); err != nil {
		return data, err
	}
	return data, nil
}

// Encode returns the imported configuration as lbd.toml bytes, and an error
// (config.Problems, lines in those bytes) when lbd would refuse it.
func (r *Result) Encode(name string) ([]byte, error) { return r.validate(name) }
