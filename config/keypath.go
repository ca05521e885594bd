package config

import (
	"strconv"
	"strings"
)

// Key paths name a value in the document the way Problem.Key does:
// dotted TOML keys with 0-based indexes for array elements, e.g.
// virtual_server[1].real_server[0].weight. A key that is not a bare TOML
// key is written quoted, so a path is never ambiguous.

// joinKey appends the key name to the path parent.
func joinKey(parent, name string) string {
	if !isBareKey(name) {
		name = strconv.Quote(name)
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// indexKey names element i of the array at path.
func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// splitKey splits a path into its segments: names (unquoted) and indexes
// (kept as "[n]").
func splitKey(path string) []string {
	var segs []string
	for i := 0; i < len(path); {
		switch path[i] {
		case '.':
			i++
		case '[':
			j := strings.IndexByte(path[i:], ']')
			if j < 0 {
				return append(segs, path[i:])
			}
			segs = append(segs, path[i:i+j+1])
			i += j + 1
		case '"':
			// Quoted by strconv.Quote: find the closing quote, skipping escapes.
			j := i + 1
			for j < len(path) && path[j] != '"' {
				if path[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(path) {
				return append(segs, path[i:])
			}
			s, err := strconv.Unquote(path[i : j+1])
			if err != nil {
				s = path[i : j+1]
			}
			segs = append(segs, s)
			i = j + 1
		default:
			j := i
			for j < len(path) && path[j] != '.' && path[j] != '[' {
				j++
			}
			segs = append(segs, path[i:j])
			i = j
		}
	}
	return segs
}

// parentKey drops the last segment of a path ("" for a top-level key).
func parentKey(path string) string {
	if !strings.Contains(path, `"`) {
		// The common case, without quoted segments: cut at the last
		// separator (checks call this per problem and per ancestor).
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return ""
		}
		return path[:i]
	}
	segs := splitKey(path)
	if len(segs) <= 1 {
		return ""
	}
	return joinSegs(segs[:len(segs)-1])
}

func joinSegs(segs []string) string {
	p := ""
	for _, s := range segs {
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") && p != "" {
			p += s
			continue
		}
		p = joinKey(p, s)
	}
	return p
}
