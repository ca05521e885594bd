package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// MaxFileSize bounds a configuration (what Load and ReadFile read, what the
// API checks): a director's config is kilobytes; anything near this is a
// mistake (wrong file), not a config.
const MaxFileSize = 8 << 20

// ErrStale is returned when a change is based on a configuration version
// that is no longer the current one (see Version).
var ErrStale = errors.New("the configuration was changed by someone else since you loaded it; reload and redo your change")

// Load reads, parses and validates the file at path. A file that cannot be
// read is a plain error (errors.Is(err, fs.ErrNotExist) works); an invalid
// one is Problems.
//
// At most MaxFileSize bytes are accepted (see ReadFile).
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ReadFile reads a configuration file: at most MaxFileSize bytes are
// accepted, and at most one more is read, since stat cannot tell the size
// of /dev/zero, a FIFO or a /proc file. errors.Is(err, fs.ErrNotExist)
// works for a missing file.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("config: %s is %d bytes; refusing files of more than %d bytes (a configuration is kilobytes: is it the right file?)", path, fi.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s has more than %d bytes; refusing it (a configuration is kilobytes: is it the right file?)", path, MaxFileSize)
	}
	return data, nil
}

// Parse decodes TOML data, fills every default and validates the result.
// name is the file name used in problems and stored in Config.Path. On any
// problem it returns a nil config and Problems listing all of them, in line
// order.
//
// After Parse every defaulted setting is explicit: pointer settings
// (Weight, Active, Preempt, TLSVerify, Sync.Enabled, Sync.ID) are non-nil,
// a real server's Port and Forwarding are resolved from its service,
// VRRP.Interface from Global.Interface, VirtualServer.Family from the VIP,
// and Sync is set whenever VRRP is, with its Interface and ID resolved
// from VRRP (see SyncSettings).
//
// Such a config is resolved: config is the one owner of lbd's defaults and
// inheritance, and the packages that read a resolved config (the director,
// the console) take its fields as they are, never deciding a default or an
// inherited value again. A config built or edited in memory is resolved by
// Resolve, or by Normalize, which validates it as well.
func Parse(name string, data []byte) (*Config, error) {
	return ParseContext(context.Background(), name, data)
}

// ParseContext is Parse that gives up, returning ctx.Err(), once ctx is
// done: a check whose requester went away (a console or /api/v1/check
// request) stops burning CPU. The context is looked at between the phases
// and every few hundred steps of the loops over services, real servers and
// problems.
func ParseContext(ctx context.Context, name string, data []byte) (*Config, error) {
	c, col, present, err := decodeDefaults(ctx, name, data)
	if err != nil {
		return nil, err
	}
	validate(c, col, present)
	return finish(ctx, c, col, name)
}

// decodeDefaults decodes data and fills every default: the part of Parse
// that Resolve shares. Problems found so far are in col.
func decodeDefaults(ctx context.Context, name string, data []byte) (*Config, *collector, map[string]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	// The scan comes first: it refuses nesting deep enough to make the
	// TOML parser use gigabytes.
	sc := scan(data)
	if sc.tooDeep > 0 {
		return nil, nil, nil, Problems{{File: name, Line: sc.tooDeep, Message: fmt.Sprintf(
			"keys, tables and arrays nested more than %d levels deep; refused before parsing (lbd's settings nest at most 4 levels)", maxNesting)}}
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, nil, nil, syntaxProblems(name, data, err, sc.firstDefined)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	col := newCollector(ctx, name)
	col.pos = sc.pos
	for _, r := range sc.redefined {
		col.addAt(r.key, r.line, r.text)
	}
	c := &Config{}
	d := &decoder{col: col, present: map[string]bool{}}
	d.decode("", raw, reflect.ValueOf(c).Elem())
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	applyDefaults(c, d.present)
	return c, col, d.present, nil
}

// finish returns c, or the problems col holds.
func finish(ctx context.Context, c *Config, col *collector, name string) (*Config, error) {
	ps := col.problems(c)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ps) > 0 {
		return nil, ps
	}
	c.Path = name
	return c, nil
}

// firstDefined maps the line of a table defined a second time to the line
// of its first definition (see scanner.define).
func syntaxProblems(name string, data []byte, err error, firstDefined map[int]int) Problems {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		// The parser's line is one too far when the error is the newline
		// ending a line ("[global" + newline); the byte offset is exact.
		if s := pe.Position.Start; s >= 0 && s <= len(data) && (s > 0 || line == 0) {
			line = 1 + bytes.Count(data[:s], []byte("\n"))
		}
		msg := "syntax error: " + pe.Message
		if first, ok := firstDefined[line]; ok && strings.Contains(pe.Message, "already") {
			msg += fmt.Sprintf(" (first defined at line %d)", first)
		}
		return Problems{{File: name, Line: line, Message: msg}}
	}
	return Problems{{File: name, Message: "syntax error: " + err.Error()}}
}

// Normalize resolves and validates a config built or edited in memory (the
// console, a program that builds one in code) with exactly the rules a file
// gets: it encodes c canonically and parses the result as
// c.Path. It returns the parsed config, the canonical bytes (what Write
// would store) and, when invalid, Problems whose lines refer to those bytes
// and whose Keys name the fields.
//
// Zero values in c mean "not set" and get their defaults (an empty
// scheduler becomes wlc, a nil weight 1, a zero rise 2), except where 0 is
// itself a setting: VirtualServer.Quorum, VRRP.GARPCount,
// Global.RemoveGrace and Sync.WarmUp, HandoverHold and TakeoverQuiet are
// taken as written, so set them when building a struct from scratch. A nil
// Sync with VRRP set gets every sync default.
func Normalize(c *Config) (*Config, []byte, error) {
	data, err := Encode(c)
	if err != nil {
		return nil, nil, err
	}
	nc, err := Parse(c.Path, data)
	if err != nil {
		return nil, data, err
	}
	return nc, data, nil
}

// Resolve returns c with every default and inherited value filled in, as
// Parse fills them for a file that leaves them out (zero values mean "not
// set", as for Normalize), and validates nothing: resolving a config from
// Parse, Load or Normalize returns an equal one. It is for a reader that
// must be sure it holds a resolved config (the director's New) without
// checking again what was checked when it was parsed (files and programs
// may have changed since; that is reported when they are used). Normalize
// resolves and validates.
func Resolve(c *Config) (*Config, error) {
	data, err := Encode(c)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	nc, col, _, err := decodeDefaults(ctx, c.Path, data)
	if err != nil {
		return nil, err
	}
	return finish(ctx, nc, col, c.Path)
}

// Version identifies a config file's content: the hex SHA-256 of its bytes.
// The console sends back the version it loaded; a mismatch means ErrStale.
func Version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
