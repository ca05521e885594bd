package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic; every
// problem must point at a line of the input; and whatever parses must
// survive Encode/Parse unchanged with a stable encoding. Seeds: the
// shipped examples, the maximal configs and testdata/fuzz/FuzzParse.
//
//	go test -fuzz FuzzParse -fuzztime 60s ./config/
func FuzzParse(f *testing.F) {
	for _, file := range []string{"../configs/lbd.toml", "../configs/vrrp-only.toml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(maximal))
	f.Add([]byte(maximalGroup6))
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
