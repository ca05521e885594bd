package config

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	File string
	// Line is the 1-based line of the offending key, or of the table
	// header when the key is missing; 0 when unknown.
	Line int
	// Key is the dotted path of the offending value with 0-based indexes,
	// e.g. virtual_server[1].real_server[0].weight, so the console can show
	// the message next to its field. Empty for syntax errors.
	Key string
	// Message is self-contained: it names the virtual/real server and key.
	Message string
}

// String formats the problem as FILE:LINE: message.
func (p Problem) String() string {
	if p.Line <= 0 {
		return fmt.Sprintf("%s: %s", p.File, p.Message)
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
}

// Problems is every problem found in one configuration, in line order. It is
// the error returned by Parse, Load and Normalize for invalid input.
type Problems []Problem

// Error lists the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// collector gathers problems while a document is decoded and validated.
// Messages are finished at the end, when names of virtual and real servers
// are known, so they can say which server they are about.
type collector struct {
	file    string
	pos     positions
	pending []pending
	// bad holds keys whose value could not be decoded; semantic checks on
	// them would only repeat the complaint with a misleading zero value.
	bad map[string]bool

	// ctx stops a check whose caller went away (a cancelled /check
	// request); it is looked at every cancelCheckEvery steps of the loops
	// over services, real servers and problems.
	ctx   context.Context
	steps int
	err   error
}

// cancelCheckEvery bounds the work done between two looks at the context.
const cancelCheckEvery = 256

// cancelled reports whether the check should stop; cheap enough to call
// per element.
func (col *collector) cancelled() bool {
	if col.err != nil {
		return true
	}
	if col.ctx == nil {
		return false
	}
	col.steps++
	if col.steps%cancelCheckEvery == 0 {
		col.err = col.ctx.Err()
	}
	return col.err != nil
}

type pending struct {
	key, text string
	line      int // 0: the line of key
}

func newCollector(ctx context.Context, file string) *collector {
	return &collector{file: file, bad: map[string]bool{}, ctx: ctx}
}

// decodeError records that key's value has the wrong type or form.
func (col *collector) decodeError(key, text string) {
	col.bad[key] = true
	col.pending = append(col.pending, pending{key: key, text: text})
}

// add records a problem unless key (or a table containing it) already had
// a decode error.
func (col *collector) add(key, text string) {
	if col.isBad(key) {
		return
	}
	col.pending = append(col.pending, pending{key: key, text: text})
}

// addAt records a problem about key found at line (not necessarily the
// line where key first appears).
func (col *collector) addAt(key string, line int, text string) {
	col.pending = append(col.pending, pending{key: key, text: text, line: line})
}

func (col *collector) isBad(key string) bool {
	for {
		if col.bad[key] {
			return true
		}
		if key == "" {
			return false
		}
		key = parentKey(key)
	}
}

// problems finishes the messages against the decoded config c (which may
// be partial) and sorts them by line.
func (col *collector) problems(c *Config) Problems {
	if len(col.pending) == 0 {
		return nil
	}
	ps := make(Problems, 0, len(col.pending))
	names := nameCounts{}
	for _, p := range col.pending {
		if col.cancelled() {
			return nil
		}
		line := p.line
		if line == 0 {
			line = col.pos.line(p.key)
		}
		ps = append(ps, Problem{
			File:    col.file,
			Line:    line,
			Key:     p.key,
			Message: describeKey(c, p.key, p.text, names),
		})
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return ps
}

// describeKey prefixes text with a readable name for key: elements of
// arrays of tables are named by their name key when they have one
// (virtual_server "web" real_server "rs1": weight: ...), so a message read
// away from the file (console banner, lbctl output) still says where.
//
// names caches, per array, how often each name occurs in it, so that
// describing every problem of a large file stays linear.
func describeKey(c *Config, key, text string, names nameCounts) string {
	if key == "" {
		return text
	}
	var ctx []string
	var rel []string
	v := reflect.ValueOf(c).Elem()
	for _, seg := range splitKey(key) {
		if strings.HasPrefix(seg, "[") {
			slice := v
			v = elemAt(v, seg)
			if name, ok := nameOf(v); ok && len(rel) > 0 {
				label := joinSegs(rel)
				switch {
				case name == "" || len(name) > maxNameLen:
					// No name, or one too long to repeat in every message.
					label += seg
				case names.count(slice, name) > 1:
					// The name alone would not say which one.
					label += fmt.Sprintf("%s %q", seg, name)
				default:
					label += fmt.Sprintf(" %q", name)
				}
				ctx = append(ctx, label)
				rel = nil
				continue
			}
			rel = append(rel, seg)
			continue
		}
		v = fieldByKey(v, seg)
		rel = append(rel, seg)
	}
	parts := []string{}
	if len(ctx) > 0 {
		parts = append(parts, strings.Join(ctx, " "))
	}
	if len(rel) > 0 {
		parts = append(parts, joinSegs(rel))
	}
	return strings.Join(append(parts, text), ": ")
}

// elemAt returns element "[n]" of slice v, or an invalid Value.
func elemAt(v reflect.Value, seg string) reflect.Value {
	i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(seg, "["), "]"))
	if err != nil {
		return reflect.Value{}
	}
	if v.IsValid() && v.Kind() == reflect.Slice && i >= 0 && i < v.Len() {
		return v.Index(i)
	}
	return reflect.Value{}
}

// fieldByKey returns the struct field of v tagged key, through pointers.
func fieldByKey(v reflect.Value, key string) reflect.Value {
	for v.IsValid() && v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	if i, ok := tomlFields(v.Type())[key]; ok {
		return v.Field(i)
	}
	return reflect.Value{}
}

// nameOf reports whether v is a table with a name key, and its value.
func nameOf(v reflect.Value) (string, bool) {
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return "", false
	}
	i, ok := tomlFields(v.Type())["name"]
	if !ok || v.Field(i).Kind() != reflect.String {
		return "", false
	}
	return v.Field(i).String(), true
}

// nameCounts counts the names of the elements of each array of tables,
// keyed by the array's first element: each array is counted once.
type nameCounts map[uintptr]map[string]int

// count returns how many elements of slice v are named name.
func (nc nameCounts) count(v reflect.Value, name string) int {
	if v.Kind() != reflect.Slice || v.Len() == 0 {
		return 0
	}
	id := v.Index(0).Addr().Pointer()
	m, ok := nc[id]
	if !ok {
		m = map[string]int{}
		for i := 0; i < v.Len(); i++ {
			if s, ok := nameOf(v.Index(i)); ok {
				m[s]++
			}
		}
		nc[id] = m
	}
	return m[name]
}
