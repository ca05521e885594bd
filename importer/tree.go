// Package importer turns the configuration of an older director, keepalived
// (keepalived.conf) or piranha (lvs.cf), into an lbd configuration. Each
// construct that has an lbd equivalent is mapped; every other one is
// reported as a Note with its file and line, so nothing is dropped silently.
//
// Both formats are read by one small lexer into a tree of statements
// (keyword, arguments, optional { block }); the mappers walk the tree. The
// lexer and parser take linear time and memory bounded by the input: no
// recursion, nesting limited to maxDepth, includes limited in depth, count
// and total size.
package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"lbd/config"
)

// Note is a construct that could not be mapped, or was mapped with a
// difference the operator must know about.
type Note struct {
	File string
	Line int
	Text string
}

func (n Note) String() string {
	switch {
	case n.File == "":
		return n.Text
	case n.Line == 0:
		return n.File + ": " + n.Text
	}
	return fmt.Sprintf("%s:%d: %s", n.File, n.Line, n.Text)
}

// Result is an imported configuration and what did not carry over.
type Result struct {
	Config *config.Config
	Notes  []Note
}

// node is one statement: Key Args... [{ Children }].
type node struct {
	Key      string
	Args     []string
	File     string
	Line     int
	Block    bool // had a { } block (possibly empty)
	Children []*node
}

func (n *node) arg(i int) string {
	if i < len(n.Args) {
		return n.Args[i]
	}
	return ""
}

// value is the arguments joined by one space.
func (n *node) value() string { return strings.Join(n.Args, " ") }

const (
	maxDepth        = 32  // nested blocks
	maxIncludeDepth = 8   // include inside include ...
	maxFiles        = 256 // files read by includes in total
)

type token struct {
	text   string
	line   int
	quoted bool
}

// lex splits data into tokens. comment holds the bytes that start a comment
// (outside quotes, at the start of a token). Braces are tokens of their own;
// a double-quoted string is one token, with \" and \\ unescaped and every
// other backslash sequence kept as written.
func lex(data []byte, comment string) []token {
	var toks []token
	line := 1
	i := 0
	for i < len(data) {
		c := data[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case strings.IndexByte(comment, c) >= 0:
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == '{' || c == '}':
			toks = append(toks, token{text: string(c), line: line})
			i++
		case c == '"':
			start := line
			var b strings.Builder
			i++
			for i < len(data) && data[i] != '"' && data[i] != '\n' {
				if data[i] == '\\' && i+1 < len(data) && (data[i+1] == '"' || data[i+1] == '\\') {
					b.WriteByte(data[i+1])
					i += 2
					continue
				}
				b.WriteByte(data[i])
				i++
			}
			if i < len(data) && data[i] == '"' {
				i++
			}
			toks = append(toks, token{text: b.String(), line: start, quoted: true})
		default:
			j := i
			for j < len(data) && !isSpace(data[j]) && data[j] != '{' && data[j] != '}' && data[j] != '"' {
				j++
			}
			toks = append(toks, token{text: string(data[i:j]), line: line})
			i = j
		}
	}
	return toks
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// parseTree builds the statement tree of one file. A statement is the tokens
// of one line up to a brace; "{" (on the same or a later line) opens its
// block, "}" closes the innermost block. include is called for every
// statement whose key is "include" and returns the statements to splice in
// its place. Problems (unbalanced braces, too deep) are returned as notes.
func parseTree(file string, toks []token, include func(n *node) []*node) ([]*node, []Note) {
	var notes []Note
	root := &node{}
	stack := []*node{root}
	var last *node // the statement a "{" on its own line belongs to
	stray := 0     // unbalanced '}': the first is noted, the rest counted
	defer func() {
		if stray > 1 {
			notes = append(notes, Note{file, 0, fmt.Sprintf("%d more unbalanced '}' ignored", stray-1)})
		}
	}()
	for i := 0; i < len(toks); {
		t := toks[i]
		top := stack[len(stack)-1]
		if !t.quoted && t.text == "}" {
			if len(stack) == 1 {
				if stray++; stray == 1 {
					notes = append(notes, Note{file, t.line, "unbalanced '}' ignored"})
				}
			} else {
				stack = stack[:len(stack)-1]
			}
			last = nil
			i++
			continue
		}
		if !t.quoted && t.text == "{" {
			if last == nil {
				last = &node{Key: "", File: file, Line: t.line}
				top.Children = append(top.Children, last)
			}
			if len(stack) > maxDepth {
				return root.Children, append(notes, Note{file, t.line, fmt.Sprintf("blocks nested more than %d deep; the rest of the file is ignored", maxDepth)})
			}
			last.Block = true
			stack = append(stack, last)
			last = nil
			i++
			continue
		}
		n := &node{Key: t.text, File: file, Line: t.line}
		i++
		for i < len(toks) && toks[i].line == t.line && (toks[i].quoted || (toks[i].text != "{" && toks[i].text != "}")) {
			n.Args = append(n.Args, toks[i].text)
			i++
		}
		if n.Key == "include" && include != nil {
			top.Children = append(top.Children, include(n)...)
			last = nil
			continue
		}
		top.Children = append(top.Children, n)
		last = n
	}
	if len(stack) > 1 {
		open := stack[len(stack)-1]
		notes = append(notes, Note{file, open.Line, fmt.Sprintf("block %q is not closed", open.Key)})
	}
	return root.Children, notes
}

// reader reads a file and its includes within the limits.
type reader struct {
	comment string
	files   int
	bytes   int
	notes   []Note
}

func (r *reader) readFile(path string, depth int) []*node {
	r.files++
	data, err := config.ReadFile(path)
	if err != nil {
		r.notes = append(r.notes, Note{path, 0, err.Error()})
		return nil
	}
	r.bytes += len(data)
	return r.parse(path, data, depth)
}

func (r *reader) parse(path string, data []byte, depth int) []*node {
	nodes, notes := parseTree(path, lex(data, r.comment), func(n *node) []*node {
		return r.include(n, depth)
	})
	r.notes = append(r.notes, notes...)
	return nodes
}

// include expands keepalived's "include PATTERN": a glob, relative to the
// directory of the file that includes it, files in name order.
func (r *reader) include(n *node, depth int) []*node {
	if depth >= maxIncludeDepth {
		r.notes = append(r.notes, Note{n.File, n.Line, fmt.Sprintf("include nested more than %d deep: not followed", maxIncludeDepth)})
		return nil
	}
	pat := n.arg(0)
	if pat == "" {
		r.notes = append(r.notes, Note{n.File, n.Line, "include without a file name"})
		return nil
	}
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(filepath.Dir(n.File), pat)
	}
	matches, err := filepath.Glob(pat)
	if err != nil {
		r.notes = append(r.notes, Note{n.File, n.Line, fmt.Sprintf("include %q: %v", n.arg(0), err)})
		return nil
	}
	if len(matches) == 0 {
		r.notes = append(r.notes, Note{n.File, n.Line, fmt.Sprintf("include %q matches no file", n.arg(0))})
	}
	sort.Strings(matches)
	var out []*node
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			continue
		}
		if r.files >= maxFiles || r.bytes > config.MaxFileSize {
			r.notes = append(r.notes, Note{n.File, n.Line, fmt.Sprintf("include %q: more than %d files or %d bytes in all; the rest is not read", n.arg(0), maxFiles, config.MaxFileSize)})
			break
		}
		out = append(out, r.readFile(m, depth+1)...)
	}
	return out
}
