package webui

import (
	"fmt"
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

// configField finds the field a form field names below obj (a struct).
func configField(obj reflect.Value, name string) (reflect.Value, reflect.StructField) {
	v := obj
	var sf reflect.StructField
	for _, key := range strings.Split(name, ".") {
		found := false
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); tomlKey(f) == key {
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
	return v, sf
}

func tomlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

// load fills the form from obj, a pointer to a config struct.
func (f *form) load(obj any) {
	v := reflect.ValueOf(obj).Elem()
	for _, name := range f.fields {
		kind := f.kinds[name]
		if kind == kindOwn {
			continue
		}
		fv, sf := configField(v, name)
		switch {
		case kind == kindChecks:
			f.Multi[name] = fv.Interface().([]string)
		case kind == kindCRLF:
			f.Values[name] = escapeCRLF(fv.String())
		case kind == kindCommas:
			f.Values[name] = strings.Join(fv.Interface().([]string), ", ")
		case kind == kindTrack:
			var lines []string
			for _, t := range fv.Interface().([]config.TrackInterface) {
				lines = append(lines, fmt.Sprintf("%s %d", t.Name, t.Weight))
			}
			f.Values[name] = strings.Join(lines, "\n")
		default:
			f.Values[name] = showValue(fv, v.Type(), sf)
		}
	}
}

// showValue is a setting as the form shows it; in is the struct holding
// the field, whose zero may or may not be a setting of its own.
func showValue(fv reflect.Value, in reflect.Type, sf reflect.StructField) string {
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
		if fv.IsZero() && !config.ZeroIsSetting(in, sf.Name) {
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
	v := reflect.ValueOf(obj).Elem()
	for _, name := range f.fields {
		kind := f.kinds[name]
		if kind == kindOwn {
			continue
		}
		fv, _ := configField(v, name)
		text := f.Values[name]
		if text == "" && kind != kindChecks && fv.Kind() != reflect.Bool && fv.Type() != reflect.TypeFor[*bool]() {
			blank = append(blank, name)
		}
		switch {
		case kind == kindChecks:
			var out []string
			for _, s := range f.Multi[name] {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			fv.Set(reflect.ValueOf(out))
		case kind == kindCRLF:
			fv.SetString(unescapeCRLF(text))
		case kind == kindLines:
			fv.Set(reflect.ValueOf(f.lines(name)))
		case kind == kindTrack:
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
