package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
)

// The TOML parser turns the text into maps and slices; this decoder moves
// them into the schema types itself rather than letting toml.Decode do it,
// because toml.Decode stops at the first wrong type and cannot say which
// element of an array of tables it was in. Here every unknown key and every
// wrong type is reported, each with its exact key path, and the set of keys
// actually written is recorded so defaults apply only to absent keys (an
// explicit `quorum = 0` is not the same as no quorum).

var (
	durationType      = reflect.TypeFor[Duration]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

type decoder struct {
	col     *collector
	present map[string]bool
	// suggestions caches "did you mean" per struct type and unknown key:
	// the same typo in every element of a large array is common.
	suggestions map[suggestKey]string
}

type suggestKey struct {
	t   reflect.Type
	key string
}

func (d *decoder) didYouMean(t reflect.Type, k string) string {
	sk := suggestKey{t, k}
	if s, ok := d.suggestions[sk]; ok {
		return s
	}
	s := didYouMean(k, fieldNames(t))
	if d.suggestions == nil {
		d.suggestions = map[suggestKey]string{}
	}
	d.suggestions[sk] = s
	return s
}

func (d *decoder) decode(key string, data any, rv reflect.Value) {
	if rv.Type() == durationType {
		s, ok := data.(string)
		if !ok {
			d.col.decodeError(key, "must be a duration such as \"500ms\", \"5s\" or \"1m30s\", not "+describeValue(data))
			return
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			d.col.decodeError(key, fmt.Sprintf("invalid duration %q (write a number with a unit, such as \"500ms\", \"5s\" or \"1m30s\")", s))
			return
		}
		rv.Set(reflect.ValueOf(Duration{v}))
		return
	}
	switch rv.Kind() {
	case reflect.Pointer:
		nv := reflect.New(rv.Type().Elem())
		d.decode(key, data, nv.Elem())
		rv.Set(nv)
	case reflect.Struct:
		m, ok := data.(map[string]any)
		if !ok {
			d.col.decodeError(key, "must be a table, not "+describeValue(data))
			return
		}
		fields := tomlFields(rv.Type())
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if d.col.cancelled() {
				return
			}
			fk := joinKey(key, k)
			i, ok := fields[k]
			if !ok {
				d.col.add(fk, "unknown key"+d.didYouMean(rv.Type(), k))
				continue
			}
			d.present[fk] = true
			d.decode(fk, m[k], rv.Field(i))
		}
	case reflect.Slice:
		var items []any
		switch v := data.(type) {
		case []any:
			items = v
		case []map[string]any:
			for _, e := range v {
				items = append(items, e)
			}
		default:
			d.col.decodeError(key, "must be an array, not "+describeValue(data))
			return
		}
		if len(items) == 0 {
			// An empty array is the same as none: the canonical form
			// leaves it out, so it must decode the same way.
			rv.SetZero()
			return
		}
		s := reflect.MakeSlice(rv.Type(), len(items), len(items))
		for i, e := range items {
			if d.col.cancelled() {
				return
			}
			d.decode(indexKey(key, i), e, s.Index(i))
		}
		rv.Set(s)
	case reflect.String:
		s, ok := data.(string)
		if !ok {
			d.col.decodeError(key, "must be a string, not "+describeValue(data))
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := data.(bool)
		if !ok {
			d.col.decodeError(key, "must be true or false, not "+describeValue(data))
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := data.(int64)
		if !ok {
			d.col.decodeError(key, "must be an integer, not "+describeValue(data))
			return
		}
		if rv.OverflowInt(n) {
			d.col.decodeError(key, fmt.Sprintf("%d is out of range", n))
			return
		}
		rv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := data.(int64)
		if !ok {
			d.col.decodeError(key, "must be an integer, not "+describeValue(data))
			return
		}
		if n < 0 || rv.OverflowUint(uint64(n)) {
			max := uint64(math.MaxUint64) >> (64 - rv.Type().Bits())
			d.col.decodeError(key, fmt.Sprintf("%d is out of range (0..%d)", n, max))
			return
		}
		rv.SetUint(uint64(n))
	default:
		// A schema field of a kind this decoder does not know: a bug in
		// lbd, reported rather than hidden.
		d.col.decodeError(key, fmt.Sprintf("lbd cannot decode values of Go type %s", rv.Type()))
	}
}

// describeValue names a TOML value's type (and the value, when short) for
// "must be X, not Y" messages.
func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// schemaFields is a struct type's TOML keys: computed once per type, as
// the decoder and every problem message ask for them per element.
type schemaFields struct {
	index map[string]int // TOML key -> field index
	names []string       // in field order, for suggestions
}

var fieldCache sync.Map // reflect.Type -> *schemaFields

func fieldsOf(t reflect.Type) *schemaFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*schemaFields)
	}
	f := &schemaFields{index: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		if name := tomlName(t.Field(i)); name != "" {
			f.index[name] = i
			f.names = append(f.names, name)
		}
	}
	actual, _ := fieldCache.LoadOrStore(t, f)
	return actual.(*schemaFields)
}

// tomlFields maps the TOML keys of struct type t to field indexes. The
// map is shared: do not modify it.
func tomlFields(t reflect.Type) map[string]int { return fieldsOf(t).index }

// tomlName is the TOML key of a struct field, "" when it has none.
func tomlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("toml")
	name, _, _ := strings.Cut(tag, ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

func fieldNames(t reflect.Type) []string { return fieldsOf(t).names }

func didYouMean(name string, candidates []string) string {
	if s := Suggest(name, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}
