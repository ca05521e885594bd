package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

const encodeHeader = `# lbd configuration.
#
# This file is maintained by lbd: a change saved from the web console or with
# lbctl rewrites it in canonical form, so comments and layout are not kept and
# settings left at their default are left out. See lbd.toml in lbd's configs/
# directory for every key, its meaning and its default.
`

// zeroMeaningful lists the fields whose zero value is a legal setting that
// differs from their default, so Encode must write a zero. Every other zero
// value (an empty string, a 0 where 0 is invalid, a nil pointer) means
// "not set" and is left out, so a struct built in memory (a console form)
// gets the same defaults as a file that omits the key.
var zeroMeaningful = map[string]bool{
	"Global.RemoveGrace":   true, // 0: drop removed real servers at once
	"VRRP.GARPCount":       true, // 0: no gratuitous ARP burst
	"VirtualServer.Quorum": true, // 0: the service never counts as down
	"Sync.WarmUp":          true, // 0: preempt without waiting for the table
	"Sync.HandoverHold":    true, // 0: give up the VIPs at once
	"Sync.TakeoverQuiet":   true, // 0: reset unknown segments at once
}

// Encode writes c as canonical TOML: a short header comment, then the
// tables in schema order ([global], [console], [vrrp], [sync],
// [[virtual_server]] each followed by its health_check and real servers),
// keys in schema order, and only settings that differ from their default.
// A [sync] left at its defaults is left out when [vrrp] is set (the
// defaults recreate it) and kept as an empty table otherwise. For any c that
// Parse returned, Parse(Encode(c)) reproduces c.
func Encode(c *Config) ([]byte, error) {
	if c == nil {
		return nil, errors.New("config: encode: nil config")
	}
	e := &encoder{c: c}
	e.buf.WriteString(encodeHeader)
	e.table("", "", false, true, reflect.ValueOf(c).Elem(), nil)
	if e.err != nil {
		return nil, e.err
	}
	return e.buf.Bytes(), nil
}

type encoder struct {
	c   *Config
	buf bytes.Buffer
	err error
}

type fieldKind int

const (
	scalarField fieldKind = iota
	tableField
	tableArrayField
)

func kindOf(t reflect.Type) fieldKind {
	if t == durationType || t.Implements(textMarshalerType) {
		return scalarField
	}
	switch t.Kind() {
	case reflect.Struct:
		return tableField
	case reflect.Pointer:
		if kindOf(t.Elem()) == tableField {
			return tableField
		}
	case reflect.Slice:
		if kindOf(t.Elem()) == tableField {
			return tableArrayField
		}
	}
	return scalarField
}

// table writes the struct v as the table named header (dotted, without
// indexes); path is its indexed key path, for errors. always writes the
// header even when the table has no keys to write (a present [vrrp] or
// array element must stay present). parent is the enclosing table's
// address, the context of context-dependent defaults.
func (e *encoder) table(header, path string, array, always bool, v reflect.Value, parent any) {
	t := v.Type()
	def := e.defaulter(t, parent)
	var lines []string
	var tables, arrays []int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		switch kindOf(f.Type) {
		case tableField:
			tables = append(tables, i)
			continue
		case tableArrayField:
			arrays = append(arrays, i)
			continue
		}
		if e.omit(v, i, name, def) {
			continue
		}
		s, err := e.value(v.Field(i))
		if err != nil && e.err == nil {
			e.err = fmt.Errorf("config: encode %s: %w", joinKey(path, name), err)
		}
		lines = append(lines, tomlKey(name)+" = "+s)
	}
	if header != "" && (always || len(lines) > 0) {
		if array {
			fmt.Fprintf(&e.buf, "\n[[%s]]\n", header)
		} else {
			fmt.Fprintf(&e.buf, "\n[%s]\n", header)
		}
	}
	for _, l := range lines {
		e.buf.WriteString(l)
		e.buf.WriteByte('\n')
	}
	self := v.Addr().Interface()
	for _, i := range tables {
		name := tomlName(t.Field(i))
		fv := v.Field(i)
		isPtr := fv.Kind() == reflect.Pointer
		if isPtr {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		e.table(subHeader(header, name), joinKey(path, name), false, isPtr && !e.implied(fv.Type()), fv, self)
	}
	for _, i := range arrays {
		name := tomlName(t.Field(i))
		fv := v.Field(i)
		for j := 0; j < fv.Len(); j++ {
			ev := fv.Index(j)
			if ev.Kind() == reflect.Pointer {
				if ev.IsNil() {
					continue
				}
				ev = ev.Elem()
			}
			e.table(subHeader(header, name), indexKey(joinKey(path, name), j), true, true, ev, self)
		}
	}
}

func subHeader(header, name string) string {
	if header == "" {
		return tomlKey(name)
	}
	return header + "." + tomlKey(name)
}

// implied reports whether a table of type t that is left out of the file
// is created with its defaults anyway, so an empty one need not be written.
func (e *encoder) implied(t reflect.Type) bool {
	return t == reflect.TypeFor[Sync]() && e.c.VRRP != nil
}

// defaulter returns the function filling the defaults of a struct of type
// t inside parent, or nil when t has no defaults.
func (e *encoder) defaulter(t reflect.Type, parent any) func(any, presence) {
	switch t {
	case reflect.TypeFor[Global]():
		return func(p any, has presence) { defaultGlobal(p.(*Global), has) }
	case reflect.TypeFor[Console]():
		return func(p any, has presence) { defaultConsole(p.(*Console), has) }
	case reflect.TypeFor[VRRP]():
		return func(p any, has presence) { defaultVRRP(p.(*VRRP), &e.c.Global, has) }
	case reflect.TypeFor[Sync]():
		return func(p any, has presence) { defaultSync(p.(*Sync), e.c, has) }
	case reflect.TypeFor[BGPNeighbor]():
		return func(p any, has presence) { defaultBGPNeighbor(p.(*BGPNeighbor), has) }
	case reflect.TypeFor[VirtualServer]():
		return func(p any, has presence) { defaultVirtualServer(p.(*VirtualServer), &e.c.Global, e.c.BGP != nil, has) }
	case reflect.TypeFor[HealthCheck]():
		if vs, ok := parent.(*VirtualServer); ok {
			return func(p any, has presence) { defaultHealthCheck(p.(*HealthCheck), vs, &e.c.Global, has) }
		}
	case reflect.TypeFor[RealServer]():
		if vs, ok := parent.(*VirtualServer); ok {
			return func(p any, has presence) { defaultRealServer(p.(*RealServer), vs, has) }
		}
	}
	return nil
}

// omit reports whether field i of struct v can be left out: it is unset
// (see zeroMeaningful) or equal to the default it would get, in its
// context, if it were absent.
func (e *encoder) omit(v reflect.Value, i int, name string, def func(any, presence)) bool {
	fv := v.Field(i)
	if fv.IsZero() || fv.Kind() == reflect.Slice && fv.Len() == 0 {
		if !zeroMeaningful[v.Type().Name()+"."+v.Type().Field(i).Name] {
			return true
		}
	}
	if def == nil {
		return false
	}
	cp := reflect.New(v.Type())
	cp.Elem().Set(v)
	cp.Elem().Field(i).SetZero()
	def(cp.Interface(), func(k string) bool { return k != name })
	return reflect.DeepEqual(cp.Elem().Field(i).Interface(), fv.Interface())
}

func (e *encoder) value(v reflect.Value) (string, error) {
	if v.Type() == durationType {
		return tomlString(v.Interface().(Duration).String())
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "", errors.New("nil pointer")
		}
		return e.value(v.Elem())
	case reflect.String:
		return tomlString(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() > 1<<63-1 {
			return "", fmt.Errorf("%d does not fit a TOML integer", v.Uint())
		}
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Slice, reflect.Array:
		parts := make([]string, v.Len())
		for i := range parts {
			s, err := e.value(v.Index(i))
			if err != nil {
				return "", fmt.Errorf("element %d: %w", i, err)
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", fmt.Errorf("cannot encode Go type %s", v.Type())
}

func tomlKey(k string) string {
	if isBareKey(k) {
		return k
	}
	s, err := tomlString(k)
	if err != nil {
		return strconv.Quote(k)
	}
	return s
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not valid UTF-8", s)
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}
