package webui

import (
	"fmt"
	"iter"
	"reflect"
	"strconv"
	"strings"

	"lbd/config"
)

// A form field is named by its TOML key path below the edited object
// ("port", "global.listen"), so one binder maps every screen's fields to
// the config through the structs' own toml tags. How a value reads as text
// follows from its Go type: a string as is, a number in decimal (blank for
// an unset zero), a config.Duration as an operator types it, a bool or
// *bool as a checkbox, an *int blank when unset, a []string one item a line
// (read back split on commas, spaces and newlines). A field spec may add
// ":kind" where the type alone does not say it:
const (
	kindLines  = "lines"  // []string, one item a line, spaces kept (argv)
	kindCommas = "commas" // []string shown comma-separated
	kindChecks = "checks" // []string from a group of checkboxes
	kindCRLF   = "crlf"   // string whose line endings are typed as \r \n
	kindTrack  = "track"  // []config.TrackInterface as NAME [WEIGHT] lines
	kindOwn    = "own"    // not a config setting: the screen handles it
)

var durationType = reflect.TypeFor[config.Duration]()

// configField finds the field a form field names below obj (a struct),
// and the struct type that declares it.
func configField(obj reflect.Value, name string) (v reflect.Value, sf reflect.StructField, in reflect.Type) {
	v = obj
	for _, key := range strings.Split(name, ".") {
		found := false
		in = v.Type()
		for i := 0; i < v.NumField(); i++ {
			if f := in.Field(i); tomlKey(f) == key {
				v, sf, found = v.Field(i), f, true
				break
			}
		}
		if !found {
			// A field list that names no setting is a programming error
			// every test of the screen meets.
			panic(fmt.Sprintf("webui: %s has no setting %q", obj.Type(), name))
		}
	}
	return v, sf, in
}

func tomlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

// setting is one form field's place in the edited object.
type setting struct {
	name, kind string
	v          reflect.Value       // the field
	field      reflect.StructField // its declaration
	in         reflect.Type        // the struct holding it
}

// settings are the form's fields in obj, a pointer to a config struct,
// without the screen's own.
func (f *form) settings(obj any) iter.Seq[setting] {
	return func(yield func(setting) bool) {
		v := reflect.ValueOf(obj).Elem()
		for _, name := range f.fields {
			if f.kinds[name] == kindOwn {
				continue
			}
			fv, sf, in := configField(v, name)
			if !yield(setting{name: name, kind: f.kinds[name], v: fv, field: sf, in: in}) {
				return
			}
		}
	}
}

// load fills the form from obj, a pointer to a config struct.
func (f *form) load(obj any) {
	for s := range f.settings(obj) {
		fv, name := s.v, s.name
		switch s.kind {
		case kindChecks:
			f.Multi[name] = fv.Interface().([]string)
		case kindCRLF:
			f.Values[name] = escapeCRLF(fv.String())
		case kindCommas:
			f.Values[name] = strings.Join(fv.Interface().([]string), ", ")
		case kindTrack:
			var lines []string
			for _, t := range fv.Interface().([]config.TrackInterface) {
				lines = append(lines, fmt.Sprintf("%s %d", t.Name, t.Weight))
			}
			f.Values[name] = strings.Join(lines, "\n")
		default:
			f.Values[name] = showValue(s)
		}
	}
}

// showValue is a setting as the form shows it.
func showValue(s setting) string {
	fv := s.v
	if fv.Type() == durationType {
		return durString(fv.Interface().(config.Duration))
	}
	switch fv.Kind() {
	case reflect.String:
		return fv.String()
	case reflect.Bool:
		return map[bool]string{true: "on"}[fv.Bool()]
	case reflect.Pointer:
		if fv.IsNil() {
			return ""
		}
		if fv.Elem().Kind() == reflect.Bool {
			return map[bool]string{true: "on"}[fv.Elem().Bool()]
		}
		return fmt.Sprint(fv.Elem().Interface())
	case reflect.Int, reflect.Uint32:
		if fv.IsZero() && !config.ZeroIsSetting(s.in, s.field.Name) {
			return "" // unset: the default applies
		}
		return fmt.Sprint(fv.Interface())
	case reflect.Slice:
		return strings.Join(fv.Interface().([]string), "\n")
	}
	panic(fmt.Sprintf("webui: no form text for %s", fv.Type()))
}

// bind stores the form's values in obj, a pointer to a config struct. A
// value that does not read as its type leaves a message on the form. It
// returns the names of the fields left blank: not set, so their default
// applies (see config.Inherit).
func (f *form) bind(obj any) (blank []string) {
	for s := range f.settings(obj) {
		fv, name := s.v, s.name
		text := f.Values[name]
		if text == "" && s.kind != kindChecks && fv.Kind() != reflect.Bool && fv.Type() != reflect.TypeFor[*bool]() {
			blank = append(blank, name)
		}
		switch {
		case s.kind == kindChecks:
			var out []string
			for _, v := range f.Multi[name] {
				if v = strings.TrimSpace(v); v != "" {
					out = append(out, v)
				}
			}
			fv.Set(reflect.ValueOf(out))
		case s.kind == kindCRLF:
			fv.SetString(unescapeCRLF(text))
		case s.kind == kindLines:
			fv.Set(reflect.ValueOf(f.lines(name)))
		case s.kind == kindTrack:
			fv.Set(reflect.ValueOf(f.trackInterfaces(name)))
		case fv.Type() == durationType:
			fv.Set(reflect.ValueOf(f.duration(name)))
		default:
			f.bindValue(fv, name)
		}
	}
	return blank
}

func (f *form) bindValue(fv reflect.Value, name string) {
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(f.V(name))
	case reflect.Bool:
		fv.SetBool(f.On(name))
	case reflect.Int:
		fv.SetInt(int64(f.int(name, 0)))
	case reflect.Uint32:
		fv.SetUint(uint64(f.uint32(name)))
	case reflect.Slice:
		fv.Set(reflect.ValueOf(f.list(name)))
	case reflect.Pointer:
		switch fv.Type().Elem().Kind() {
		case reflect.Bool:
			fv.Set(reflect.ValueOf(f.boolPtr(name)))
		case reflect.Int:
			fv.Set(reflect.ValueOf(f.intPtr(name)))
		default:
			panic(fmt.Sprintf("webui: cannot bind %s", fv.Type()))
		}
	default:
		panic(fmt.Sprintf("webui: cannot bind %s", fv.Type()))
	}
}

// trackInterfaces reads NAME [WEIGHT] lines.
func (f *form) trackInterfaces(name string) []config.TrackInterface {
	var out []config.TrackInterface
	for _, l := range f.lines(name) {
		parts := strings.Fields(l)
		t := config.TrackInterface{Name: parts[0]}
		if len(parts) > 2 {
			f.addError(name, fmt.Sprintf("%q: write one interface per line as NAME [WEIGHT]", l))
			continue
		}
		if len(parts) == 2 {
			w, err := strconv.Atoi(parts[1])
			if err != nil {
				f.addError(name, fmt.Sprintf("%q: the weight %q is not a whole number", l, parts[1]))
				continue
			}
			t.Weight = w
		}
		out = append(out, t)
	}
	return out
}

// unescapeCRLF turns the two-character sequences \r and \n into real line
// endings, so "GET / HTTP/1.0\r\n\r\n" can be typed on one line.
func unescapeCRLF(s string) string {
	return strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(s)
}

func escapeCRLF(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
