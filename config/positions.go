package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// positions maps the key path of every key, table header and array element
// in a TOML document to the 1-based line it starts on.
//
// BurntSushi/toml keeps positions only per unindexed key (the last
// [[virtual_server]] wins), so the lines of keys inside arrays of tables
// would be wrong; this small scanner walks the source itself, tracking
// table headers and array-of-tables indexes. It runs only on documents the
// TOML parser accepted, so it can be lenient; it must still never panic or
// loop on any input.
type positions map[string]int

// line returns the line of path or, when path is not written in the source
// (a missing key), of its nearest ancestor that is: usually the table
// header. 0 means unknown.
func (p positions) line(path string) int {
	for {
		if l, ok := p[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentKey(path)
	}
}

// maxNesting is how deep keys, tables and arrays may nest: lbd's schema
// needs 4 levels (virtual_server.real_server + a key, or
// health_check.expect_status + an element). A deeper document is refused
// before the TOML parser sees it: thousands of levels in a few kilobytes
// made the parser (and this scanner) use gigabytes.
const maxNesting = 16

// scanPositions scans src; tooDeep is the line where the nesting first
// goes beyond maxNesting (0 when it does not), where the scan stops.
func scanPositions(src []byte) (pos positions, tooDeep int) {
	sc := scan(src)
	return sc.pos, sc.tooDeep
}

func scan(src []byte) *scanner {
	sc := &scanner{s: src, line: 1, pos: positions{}, arrays: map[string]int{}}
	if strings.HasPrefix(string(src[:min(3, len(src))]), "\ufeff") {
		sc.i = 3 // a UTF-8 byte order mark, which the TOML parser accepts
	}
	sc.document()
	return sc
}

type scanner struct {
	s    []byte
	i    int
	line int
	pos  positions
	// arrays counts the elements of each array of tables seen so far,
	// keyed by its resolved path without index.
	arrays map[string]int
	// tooDeep is the line where nesting went beyond maxNesting; the scan
	// stops there, so neither time nor memory grows with the depth.
	tooDeep int
	// defined says, per table path, how and where the table was defined:
	// by its [header] or by dotted keys. TOML forbids defining one table
	// both ways; the TOML parser accepts it (and merges the two), so the
	// scanner reports it (see redefined).
	defined   map[string]tableDef
	redefined []redefinition
	// firstDefined maps the line of a second definition the TOML parser
	// refuses to the line of the first, for its message.
	firstDefined map[int]int
}

type tableDef struct {
	how  defKind
	line int
}

type defKind int

const (
	byDottedKeys defKind = iota
	byHeader
	byInlineTable // key = { ... }
)

// redefinition is a table defined both by dotted keys and by a header.
type redefinition struct {
	key  string // the table's path
	line int    // the second definition
	text string
}

func (sc *scanner) define(p string, how defKind, line int) {
	if sc.defined == nil {
		sc.defined = map[string]tableDef{}
	}
	d, ok := sc.defined[p]
	switch {
	case !ok:
		sc.defined[p] = tableDef{how, line}
	case how == byHeader && d.how == byDottedKeys:
		sc.redefined = append(sc.redefined, redefinition{p, line, fmt.Sprintf(
			"this header defines again the table that the dotted keys at line %d defined (TOML forbids it); write its keys in one place", d.line)})
	case how == byDottedKeys && d.how == byHeader:
		sc.redefined = append(sc.redefined, redefinition{p, line, fmt.Sprintf(
			"these dotted keys add to the table defined by its header at line %d (TOML forbids it); write the keys under that header", d.line)})
	case how != byDottedKeys || d.how != byDottedKeys:
		// The TOML parser refuses these (a header twice, a table after
		// an inline table) but names only the second line.
		if sc.firstDefined == nil {
			sc.firstDefined = map[int]int{}
		}
		if _, ok := sc.firstDefined[line]; !ok {
			sc.firstDefined[line] = d.line
		}
	}
}

// deep records that depth levels of nesting start on the current line and
// reports whether that is too deep.
func (sc *scanner) deep(depth int) bool {
	if depth > maxNesting && sc.tooDeep == 0 {
		sc.tooDeep = sc.line
	}
	return sc.tooDeep != 0
}

func (sc *scanner) eof() bool { return sc.i >= len(sc.s) }

func (sc *scanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

func (sc *scanner) hasPrefix(p string) bool {
	return strings.HasPrefix(string(sc.s[sc.i:min(len(sc.s), sc.i+len(p))]), p)
}

// adv consumes one byte, counting lines.
func (sc *scanner) adv() {
	if sc.eof() {
		return
	}
	if sc.s[sc.i] == '\n' {
		sc.line++
	}
	sc.i++
}

// skipSpace skips blanks on the current line.
func (sc *scanner) skipSpace() {
	for !sc.eof() && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t' || sc.s[sc.i] == '\r') {
		sc.i++
	}
}

// skipSpaceNL skips blanks, newlines and comments.
func (sc *scanner) skipSpaceNL() {
	for !sc.eof() {
		switch sc.s[sc.i] {
		case ' ', '\t', '\r', '\n':
			sc.adv()
		case '#':
			for !sc.eof() && sc.s[sc.i] != '\n' {
				sc.i++
			}
		default:
			return
		}
	}
}

func (sc *scanner) document() {
	table, depth := "", 0
	for {
		sc.skipSpaceNL()
		if sc.eof() || sc.tooDeep != 0 {
			return
		}
		start := sc.i
		if sc.peek() == '[' {
			table, depth = sc.header()
		} else {
			sc.keyValue(table, depth)
		}
		// Whatever remains on the line is blanks or a comment.
		for !sc.eof() && sc.s[sc.i] != '\n' {
			sc.i++
		}
		if sc.i == start {
			sc.adv()
		}
	}
}

// header reads [a.b] or [[a.b]] and returns the resolved table path and
// its depth in keys.
func (sc *scanner) header() (string, int) {
	line := sc.line
	sc.i++
	array := false
	if sc.peek() == '[' {
		array = true
		sc.i++
	}
	segs := sc.keySegs()
	if sc.deep(len(segs)) {
		return "", 0
	}
	sc.skipSpace()
	for sc.peek() == ']' {
		sc.i++
	}
	p := ""
	for k, seg := range segs {
		p = joinKey(p, seg)
		last := k == len(segs)-1
		if last && array {
			if _, ok := sc.pos[p]; !ok {
				sc.pos[p] = line
			}
			n := sc.arrays[p]
			sc.arrays[p] = n + 1
			p = indexKey(p, n)
			sc.pos[p] = line
			continue
		}
		if n := sc.arrays[p]; n > 0 {
			p = indexKey(p, n-1)
		}
		if _, ok := sc.pos[p]; !ok || last {
			sc.pos[p] = line
		}
		if last {
			sc.define(p, byHeader, line)
		}
	}
	return p, len(segs)
}

// keyValue reads key = value inside table, which is depth keys deep.
func (sc *scanner) keyValue(table string, depth int) {
	p, depth := sc.keyPath(table, depth, true)
	if sc.tooDeep != 0 {
		return
	}
	sc.skipSpace()
	if sc.peek() == '=' {
		sc.i++
	}
	sc.skipSpace()
	if sc.peek() == '{' {
		sc.define(p, byInlineTable, sc.line)
	}
	sc.value(p, depth)
}

// keyPath reads a (dotted) key, records the lines of it and its implicit
// parent tables, and returns its path under base and its depth (base is
// depth deep). dotted says the parent tables are defined by this key (a
// key/value line, not a key inside an inline table).
func (sc *scanner) keyPath(base string, depth int, dotted bool) (string, int) {
	line := sc.line
	segs := sc.keySegs()
	depth += len(segs)
	if sc.deep(depth) {
		return "", depth
	}
	p := base
	for k, seg := range segs {
		p = joinKey(p, seg)
		if _, ok := sc.pos[p]; !ok || k == len(segs)-1 {
			sc.pos[p] = line
		}
		if dotted && k < len(segs)-1 {
			sc.define(p, byDottedKeys, line)
		}
	}
	return p, depth
}

// keySegs reads a dotted key: bare, "basic" or 'literal' parts. Past
// maxNesting+1 parts it stops: the key is too deep anyway.
func (sc *scanner) keySegs() []string {
	var segs []string
	for {
		if len(segs) > maxNesting {
			return segs
		}
		sc.skipSpace()
		switch sc.peek() {
		case '"':
			segs = append(segs, sc.basicString())
		case '\'':
			segs = append(segs, sc.literalString())
		default:
			j := sc.i
			for j < len(sc.s) && !strings.ContainsRune(" \t\r\n=.#[]{},\"'", rune(sc.s[j])) {
				j++
			}
			if j == sc.i {
				return segs
			}
			segs = append(segs, string(sc.s[sc.i:j]))
			sc.i = j
		}
		sc.skipSpace()
		if sc.peek() != '.' {
			return segs
		}
		sc.i++
	}
}

// value skips one value, recording the lines of array elements and inline
// table keys under path p, which is depth levels deep.
func (sc *scanner) value(p string, depth int) {
	switch {
	case sc.hasPrefix(`"""`):
		sc.multiline(`"""`, true)
	case sc.hasPrefix(`'''`):
		sc.multiline(`'''`, false)
	case sc.peek() == '"':
		sc.basicString()
	case sc.peek() == '\'':
		sc.literalString()
	case sc.peek() == '[':
		sc.array(p, depth)
	case sc.peek() == '{':
		sc.inlineTable(p, depth)
	default:
		// Numbers, booleans, dates (which may contain a space).
		for !sc.eof() && !strings.ContainsRune(",]}#\r\n", rune(sc.s[sc.i])) {
			sc.i++
		}
	}
}

func (sc *scanner) array(p string, depth int) {
	if sc.deep(depth + 1) {
		return
	}
	sc.i++ // [
	n := 0
	for {
		sc.skipSpaceNL()
		if sc.tooDeep != 0 {
			return
		}
		switch sc.peek() {
		case 0:
			if sc.eof() {
				return
			}
		case ']':
			sc.i++
			return
		case ',':
			sc.i++
			continue
		}
		start := sc.i
		e := indexKey(p, n)
		sc.pos[e] = sc.line
		n++
		sc.value(e, depth+1)
		if sc.i == start {
			sc.adv()
		}
	}
}

func (sc *scanner) inlineTable(p string, depth int) {
	sc.i++ // {
	for {
		sc.skipSpaceNL() // TOML 1.1 allows newlines and comments here
		if sc.tooDeep != 0 {
			return
		}
		switch sc.peek() {
		case 0:
			if sc.eof() {
				return
			}
		case '}':
			sc.i++
			return
		case ',':
			sc.i++
			continue
		}
		start := sc.i
		k, kd := sc.keyPath(p, depth, false)
		if sc.tooDeep != 0 {
			return
		}
		if kd == depth {
			// No key: not TOML. Do not descend into what follows ("{{{"
			// would nest without counting as depth).
			if sc.i == start {
				sc.adv()
			}
			continue
		}
		sc.skipSpace()
		if sc.peek() == '=' {
			sc.i++
		}
		sc.skipSpace()
		sc.value(k, kd)
		if sc.i == start {
			sc.adv()
		}
	}
}

// multiline skips a triple-quoted (multi-line) basic or literal string.
func (sc *scanner) multiline(delim string, escapes bool) {
	sc.i += 3
	for !sc.eof() {
		if escapes && sc.s[sc.i] == '\\' {
			sc.adv()
			sc.adv()
			continue
		}
		if sc.hasPrefix(delim) {
			sc.i += 3
			// Up to two more quotes belong to the string's content.
			for k := 0; k < 2 && sc.peek() == delim[0]; k++ {
				sc.i++
			}
			return
		}
		sc.adv()
	}
}

// basicString reads a "..." string and returns its decoded content.
func (sc *scanner) basicString() string {
	sc.i++ // "
	var b strings.Builder
	for !sc.eof() {
		c := sc.s[sc.i]
		switch {
		case c == '"':
			sc.i++
			return b.String()
		case c == '\n':
			return b.String() // not valid TOML; stop at the line end
		case c == '\\' && sc.i+1 < len(sc.s):
			sc.i++
			sc.escape(&b)
		default:
			b.WriteByte(c)
			sc.i++
		}
	}
	return b.String()
}

// escape decodes the escape sequence after a backslash.
func (sc *scanner) escape(b *strings.Builder) {
	c := sc.s[sc.i]
	sc.i++
	simple := map[byte]byte{'b': '\b', 't': '\t', 'n': '\n', 'f': '\f', 'r': '\r', 'e': 0x1b, '"': '"', '\\': '\\'}
	if r, ok := simple[c]; ok {
		b.WriteByte(r)
		return
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
	if digits == 0 || sc.i+digits > len(sc.s) {
		b.WriteByte(c)
		return
	}
	v, err := strconv.ParseUint(string(sc.s[sc.i:sc.i+digits]), 16, 32)
	if err != nil || !utf8.ValidRune(rune(v)) {
		b.WriteByte(c)
		return
	}
	sc.i += digits
	b.WriteRune(rune(v))
}

// literalString reads a '...' string.
func (sc *scanner) literalString() string {
	sc.i++ // '
	j := sc.i
	for j < len(sc.s) && sc.s[j] != '\'' && sc.s[j] != '\n' {
		j++
	}
	s := string(sc.s[sc.i:j])
	sc.i = j
	if sc.peek() == '\'' {
		sc.i++
	}
	return s
}
