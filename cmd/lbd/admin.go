package main

// `lbd passwd` and `lbd token`: the console's credentials, stored only as
// hashes in the [console] table of the configuration file.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"lbd/config"
)

const (
	minPasswordLen = 8
	// bcrypt uses only the first 72 bytes; longer passwords would be
	// silently truncated, so they are refused.
	maxPasswordLen = 72
	bcryptCost     = 12
)

// runPasswd implements `lbd passwd -config FILE`: it reads a new console
// password (twice from a terminal, once from stdin otherwise) and stores
// its bcrypt hash in console.password_hash.
func runPasswd(args []string) int {
	return passwd(args, os.Stdin, os.Stdout, os.Stderr)
}

// runToken implements `lbd token -config FILE [-name N] [-read-only]`: it
// creates an API bearer token, prints it once and stores its SHA-256 in
// console.token_hashes (admin scope) or console.read_token_hashes
// (read-only).
func runToken(args []string) int {
	return token(args, os.Stdout, os.Stderr)
}

func passwd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lbd passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration `file` to store the password hash in")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lbd passwd -config FILE\n\nSets the web console password. It is read twice from the terminal, or once\n(one line) from standard input when that is not a terminal.\n\n")
		fs.PrintDefaults()
	}
	if code, done := parseAdminFlags(fs, args, stderr); done {
		return code
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return adminConfigError(stderr, "passwd", err)
	}

	var pw string
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		pw, err = readPasswordTwice(f, stderr)
	} else {
		pw, err = readLine(stdin)
	}
	if err != nil {
		fmt.Fprintf(stderr, "lbd passwd: %v; nothing was changed\n", err)
		return 1
	}
	if err := checkPassword(pw); err != nil {
		fmt.Fprintf(stderr, "lbd passwd: %v; nothing was changed\n", err)
		return 1
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if err != nil {
		fmt.Fprintf(stderr, "lbd passwd: hashing: %v\n", err)
		return 1
	}
	cfg.Console.PasswordHash = string(hash)
	if err := config.Write(*path, cfg); err != nil {
		fmt.Fprintf(stderr, "lbd passwd: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Console password set in %s (rewritten in canonical form; the previous file is %s.bak).\n", *path, *path)
	fmt.Fprintln(stdout, "A running lbd uses it after a reload (systemctl reload lbd, or lbctl reload).")
	return 0
}

var tokenNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func token(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lbd token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration `file` to store the token hash in")
	name := fs.String("name", "lbctl", "label of the token: letters, digits, - and _ (shown in the event log)")
	readOnly := fs.Bool("read-only", false, "create a read-only token (Prometheus, dashboards): it reads state and metrics and can change nothing")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lbd token -config FILE [-name NAME] [-read-only]\n\nCreates an API token for lbctl and other clients. The token is printed once\non standard output; only its SHA-256 hash is stored. An admin token (the\ndefault) can do everything the console can; a -read-only one can only read.\n\n")
		fs.PrintDefaults()
	}
	if code, done := parseAdminFlags(fs, args, stderr); done {
		return code
	}
	if !tokenNameRe.MatchString(*name) {
		fmt.Fprintf(stderr, "lbd token: -name %q: use 1 to 32 letters, digits, '-' or '_'\n", *name)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return adminConfigError(stderr, "token", err)
	}
	tok, hash := newToken(*name)
	scope := "admin"
	if *readOnly {
		scope = "read-only"
		cfg.Console.ReadTokenHashes = append(cfg.Console.ReadTokenHashes, hash)
	} else {
		cfg.Console.TokenHashes = append(cfg.Console.TokenHashes, hash)
	}
	if err := config.Write(*path, cfg); err != nil {
		fmt.Fprintf(stderr, "lbd token: %v\n", err)
		return 1
	}
	// The token alone on stdout, so `TOKEN=$(lbd token ...)` works; the
	// explanation goes to stderr.
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "%s API token %q created; its hash is stored in %s (sha256 %s…).\n", scope, *name, *path, hash[:12])
	fmt.Fprintln(stderr, "It is shown only this once: save it now, e.g. in ~/.config/lbctl/token (mode 0600) or $LBCTL_TOKEN.")
	fmt.Fprintln(stderr, "A running lbd accepts it after a reload (systemctl reload lbd, or lbctl reload with another token).")
	return 0
}

// newToken returns "NAME.SECRET" with 256 random bits and the SHA-256 hex
// digest the console compares against. The name rides along in the token so
// the console can say which token made a change without storing names.
func newToken(name string) (tok, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails on Linux
	tok = name + "." + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	return tok, hex.EncodeToString(sum[:])
}

func parseAdminFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return 2, true
	}
	return 0, false
}

func adminConfigError(stderr io.Writer, cmd string, err error) int {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(stderr, p.String())
		}
		fmt.Fprintf(stderr, "lbd %s: the configuration has problems; fix them first (nothing was changed)\n", cmd)
		return 1
	}
	fmt.Fprintf(stderr, "lbd %s: %v\n", cmd, err)
	return 1
}

func checkPassword(pw string) error {
	switch {
	case pw == "":
		return errors.New("empty password")
	case len(pw) < minPasswordLen:
		return fmt.Errorf("password too short (at least %d characters)", minPasswordLen)
	case len(pw) > maxPasswordLen:
		return fmt.Errorf("password too long (at most %d bytes)", maxPasswordLen)
	}
	return nil
}

// readLine reads one line (the password) from a pipe or file.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no password on standard input")
		}
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func readPasswordTwice(tty *os.File, prompt io.Writer) (string, error) {
	pw, err := readPasswordNoEcho(tty, prompt, "New console password: ")
	if err != nil {
		return "", err
	}
	if err := checkPassword(pw); err != nil {
		return "", err
	}
	again, err := readPasswordNoEcho(tty, prompt, "Repeat it: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two passwords differ")
	}
	return pw, nil
}
