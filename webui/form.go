package webui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"lbd/config"
)

// form holds a screen's fields as the operator typed them, plus the
// messages to show next to each. Values stay strings so a refused form comes
// back exactly as it was sent.
type form struct {
	Values  map[string]string
	Multi   map[string][]string
	Errors  map[string][]string
	General []string
	// Conflict is set when the save was refused because someone else
	// changed the configuration first.
	Conflict bool
	// prefix is the dotted config path of the edited object, e.g.
	// "virtual_server[1].", used to place validator messages.
	prefix string
	fields []string          // names, in order
	kinds  map[string]string // name -> kind, where a spec gave one (see bind.go)
}

// newForm makes a form of the given field specs: NAME or NAME:KIND.
func newForm(prefix string, specs ...string) *form {
	f := &form{
		Values: make(map[string]string),
		Multi:  make(map[string][]string),
		Errors: make(map[string][]string),
		prefix: prefix,
		kinds:  make(map[string]string),
	}
	for _, spec := range specs {
		name, kind, _ := strings.Cut(spec, ":")
		f.fields = append(f.fields, name)
		if kind != "" {
			f.kinds[name] = kind
		}
	}
	return f
}

// V is a field's value.
func (f *form) V(name string) string { return f.Values[name] }

// E are a field's messages.
func (f *form) E(name string) []string { return f.Errors[name] }

// On reports whether a checkbox is ticked.
func (f *form) On(name string) bool { return f.Values[name] == "on" }

// Has reports whether a multi-value field holds v.
func (f *form) Has(name, v string) bool {
	for _, x := range f.Multi[name] {
		if x == v {
			return true
		}
	}
	return false
}

// Invalid reports whether any message is set.
func (f *form) Invalid() bool { return len(f.Errors) > 0 || len(f.General) > 0 }

func (f *form) addError(name, msg string) { f.Errors[name] = append(f.Errors[name], msg) }

func (f *form) setBool(name string, b bool) {
	if b {
		f.Values[name] = "on"
	} else {
		f.Values[name] = ""
	}
}

// read takes the posted values of the form's fields. Checkboxes that are
// not posted are off; a group of checkboxes keeps every value.
func (f *form) read(c *gin.Context) {
	for _, name := range f.fields {
		if f.kinds[name] == kindChecks {
			f.Multi[name] = c.PostFormArray(name)
			continue
		}
		f.Values[name] = strings.TrimSpace(c.PostForm(name))
	}
}

// placeProblems puts each validator message next to the field its key
// names; messages about other parts of the configuration go on top.
func (f *form) placeProblems(ps config.Problems) {
	for _, p := range ps {
		if name, ok := f.fieldFor(p.Key); ok {
			f.addError(name, fieldMessage(p))
			continue
		}
		f.General = append(f.General, p.Message)
	}
}

// fieldMessage drops the part of a validator message that says where the
// problem is ("virtual_server "web" real_server "rs1": weight: "), which is
// obvious when it is shown under the field itself.
func fieldMessage(p config.Problem) string {
	tail := p.Key
	if i := strings.LastIndex(tail, "]."); i >= 0 {
		tail = tail[i+2:]
	}
	if tail == "" {
		return p.Message
	}
	if i := strings.Index(p.Message, tail+": "); i >= 0 {
		return p.Message[i+len(tail)+2:]
	}
	return p.Message
}

func (f *form) fieldFor(key string) (string, bool) {
	if !strings.HasPrefix(key, f.prefix) {
		return "", false
	}
	rest := key[len(f.prefix):]
	best := ""
	for _, name := range f.fields {
		if rest == name || strings.HasPrefix(rest, name+".") || strings.HasPrefix(rest, name+"[") {
			if len(name) > len(best) {
				best = name
			}
		}
	}
	return best, best != ""
}

// --- typed readers: each records a message instead of failing ---

// int reads an integer; empty gives def.
func (f *form) int(name string, def int) int {
	v := f.Values[name]
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		f.addError(name, fmt.Sprintf("%q is not a whole number", v))
		return def
	}
	return n
}

// intPtr reads an optional integer; empty gives nil so the default applies.
func (f *form) intPtr(name string) *int {
	if f.Values[name] == "" {
		return nil
	}
	n := f.int(name, 0)
	return &n
}

func (f *form) uint32(name string) uint32 {
	v := f.Values[name]
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		f.addError(name, fmt.Sprintf("%q is not a number from 0 to 4294967295", v))
		return 0
	}
	return uint32(n)
}

func (f *form) duration(name string) config.Duration {
	v := f.Values[name]
	if v == "" {
		return config.Duration{}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		// Bare numbers are seconds, as operators coming from keepalived expect.
		if n, err2 := strconv.ParseFloat(v, 64); err2 == nil {
			return config.Duration{Duration: time.Duration(n * float64(time.Second))}
		}
		f.addError(name, fmt.Sprintf("%q is not a duration (write e.g. 500ms, 2s, 5m)", v))
		return config.Duration{}
	}
	return config.Duration{Duration: d}
}

func (f *form) boolPtr(name string) *bool {
	b := f.On(name)
	return &b
}

// lines splits a textarea into its non-empty lines.
func (f *form) lines(name string) []string {
	var out []string
	for _, l := range strings.Split(f.Values[name], "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// list splits on commas, spaces and newlines.
func (f *form) list(name string) []string {
	return strings.FieldsFunc(f.Values[name], func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})
}

// durString shows a duration the way an operator would type it: "8h",
// "5m", "1m30s", not Go's "8h0m0s".
func durString(d config.Duration) string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
