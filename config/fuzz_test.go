package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic; every
// problem must point at a line of the input, and a problem about a key at
// the line that writes the key (see checkProblemLine); and whatever parses
// must survive Encode/Parse unchanged with a stable encoding. Seeds: the
// shipped examples, the maximal configs and testdata/fuzz/FuzzParse.
//
//	go test -fuzz FuzzParse -fuzztime 60s ./config/
func FuzzParse(f *testing.F) {
	for _, file := range []string{"../configs/lbd.toml", "../configs/vrrp-only.toml", "../configs/active-active-lvs1.toml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(maximal))
	f.Add([]byte(maximalGroup6))
	f.Add([]byte(maximalInstances))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse error is not Problems: %T %v", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, p := range ps {
				if p.Line < 1 || p.Line > lines || p.File != "f.toml" || p.Message == "" {
					t.Fatalf("problem %+v outside the input's %d lines", p, lines)
				}
			}
			checkProblemLines(t, data, ps)
			return
		}
		enc, err := Encode(c)
		if err != nil {
			t.Fatalf("Encode of a parsed config: %v", err)
		}
		c2, err := Parse("f.toml", enc)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the config: %s\n%s", firstDiff(reflect.ValueOf(c), reflect.ValueOf(c2), "config"), enc)
		}
		if enc2, _ := Encode(c2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n---\n%s", enc, enc2)
		}
	})
}

// checkProblemLines checks that every problem about a key points at a line
// that really writes it. The oracle is independent of the line scanner
// under test: the TOML parser's own decoding of data says which part of
// the key's path is written, and a plain split of the line into words and
// quoted strings says what the line holds.
//
// A written key's line holds its last name; a missing key's line is that
// of its nearest written ancestor (usually the table header). An element
// of an array of tables is its [[header]], so that line holds the array's
// name; an element of an inline array (which may span lines) starts on its
// line, so the line holds how that kind of value starts.
func checkProblemLines(t *testing.T, data []byte, ps Problems) {
	t.Helper()
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		// A syntax error: no key is known.
		for _, p := range ps {
			if p.Key != "" {
				t.Fatalf("problem %+v has a key, but the input does not parse (%v)", p, err)
			}
		}
		return
	}
	lines := strings.Split(strings.TrimPrefix(string(data), "\ufeff"), "\n")
	for _, p := range ps {
		if p.Key == "" || p.Line == 0 {
			continue
		}
		segs := splitKey(p.Key)
		written, container, v := writtenPrefix(raw, segs)
		if written == 0 {
			t.Fatalf("problem %+v has a line, but no part of its key is written", p)
		}
		line := lines[p.Line-1]
		last := segs[written-1]
		if !strings.HasPrefix(last, "[") {
			if !lineWords(line)[last] {
				t.Fatalf("problem %+v: line %d %q does not write %q (of %s)", p, p.Line, line, last, joinSegs(segs[:written]))
			}
			continue
		}
		if _, ok := container.([]map[string]any); ok {
			name := segs[written-2]
			if !strings.HasPrefix(strings.TrimSpace(line), "[[") || !lineWords(line)[name] {
				t.Fatalf("problem %+v: line %d %q is not a [[%s]] header (for %s)", p, p.Line, line, name, joinSegs(segs[:written]))
			}
			continue
		}
		if !startsValue(line, v) {
			t.Fatalf("problem %+v: line %d %q does not start the element %s (%#v)", p, p.Line, line, joinSegs(segs[:written]), v)
		}
	}
}

// writtenPrefix returns how many segments of the key path segs are written
// in the document raw, the value holding the last of them and its value.
func writtenPrefix(raw map[string]any, segs []string) (n int, container, v any) {
	v = raw
	for i, seg := range segs {
		var next any
		ok := false
		if strings.HasPrefix(seg, "[") {
			idx, err := strconv.Atoi(strings.Trim(seg, "[]"))
			switch a := v.(type) {
			case []any:
				if ok = err == nil && idx >= 0 && idx < len(a); ok {
					next = a[idx]
				}
			case []map[string]any:
				if ok = err == nil && idx >= 0 && idx < len(a); ok {
					next = a[idx]
				}
			}
		} else if m, isMap := v.(map[string]any); isMap {
			next, ok = m[seg]
		}
		if !ok {
			return i, container, v
		}
		container, v = v, next
	}
	return len(segs), container, v
}

// lineWords splits a line into the words and (decoded) quoted strings it
// holds: every key written on it is one of them.
func lineWords(line string) map[string]bool {
	words := map[string]bool{}
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(line) && line[j] != c {
				if c == '"' && line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				return words // unterminated: a multi-line string
			}
			var m map[string]string
			if _, err := toml.Decode("k = "+line[i:j+1], &m); err == nil {
				words[m["k"]] = true
			}
			i = j + 1
		case strings.IndexByte(" \t\r=.#[]{},", c) >= 0:
			i++
		default:
			j := i
			for j < len(line) && strings.IndexByte(" \t\r=.#[]{},\"'", line[j]) < 0 {
				j++
			}
			words[line[i:j]] = true
			i = j
		}
	}
	return words
}

// startsValue reports whether line holds the first character of a value
// like v, as an element of an inline array starting on it would.
func startsValue(line string, v any) bool {
	switch v.(type) {
	case map[string]any:
		return strings.Contains(line, "{")
	case []any:
		return strings.Contains(line, "[")
	case string:
		return strings.ContainsAny(line, `"'`)
	case bool:
		return strings.Contains(line, "true") || strings.Contains(line, "false")
	case int64, time.Time:
		return strings.ContainsAny(line, "0123456789")
	case float64:
		return strings.ContainsAny(line, "0123456789") || strings.Contains(line, "inf") || strings.Contains(line, "nan")
	}
	return true
}
