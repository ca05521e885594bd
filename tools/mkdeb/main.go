// Command mkdeb builds lbd's Debian package with nfpm, or installs the same
// files into a directory tree (make install). The file list below is the
// one place that says what lbd installs where; man pages and shell
// completions are generated from the built binaries' own help (lbd -h,
// lbctl --help, lbctl completion) and the documented example
// configuration, so nothing is written twice.
//
//	mkdeb -bin bin -version 0.1.0 -deb dist          dist/lbd_0.1.0_amd64.deb
//	mkdeb -bin bin -install /tmp/root -prefix /usr/local
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// file is one installed file: Dst is its path in the package (prefix /usr).
type file struct {
	Src, Dst string
	Mode     fs.FileMode
	Conf     bool // a conffile: never replaced once there
}

func main() {
	binDir := flag.String("bin", "bin", "`directory` holding the built lbd and lbctl")
	version := flag.String("version", "0.0.0", "package `version` (Debian syntax)")
	arch := flag.String("arch", "amd64", "package architecture")
	debDir := flag.String("deb", "", "write lbd_VERSION_ARCH.deb into this `directory`")
	destDir := flag.String("install", "", "install the files under this `directory` (DESTDIR; / for the host)")
	prefix := flag.String("prefix", "/usr/local", "with -install: where /usr's files go")
	flag.Parse()
	if (*debDir == "") == (*destDir == "") {
		fmt.Fprintln(os.Stderr, "mkdeb: give -deb DIR or -install DESTDIR")
		os.Exit(2)
	}
	gen, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(gen)
	list, err := fileList(*binDir, gen)
	if err != nil {
		fail(err)
	}
	if *debDir != "" {
		out, err := buildDeb(list, *version, *arch, *debDir)
		if err != nil {
			fail(err)
		}
		fmt.Println(out)
		return
	}
	if err := install(list, *destDir, *prefix, gen); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "mkdeb: %v\n", err)
	os.Exit(1)
}

// fileList generates the man pages and completions into gen and returns
// every installed file.
func fileList(binDir, gen string) ([]file, error) {
	lbd, lbctl := filepath.Join(binDir, "lbd"), filepath.Join(binDir, "lbctl")
	g := generator{dir: gen, lbd: lbd, lbctl: lbctl}
	g.manLbd()
	g.manLbctl()
	g.manConfig("configs/lbd.toml")
	g.completions()
	if g.err != nil {
		return nil, g.err
	}
	list := []file{
		{lbd, "/usr/sbin/lbd", 0o755, false},
		{lbctl, "/usr/bin/lbctl", 0o755, false},
		{"configs/lbd.service", "/lib/systemd/system/lbd.service", 0o644, false},
		{"configs/lbd-modules.conf", "/usr/lib/modules-load.d/lbd.conf", 0o644, false},
		{"packaging/deb/lbd.toml", "/etc/lbd/lbd.toml", 0o600, true},
		{"README.md", "/usr/share/doc/lbd/README.md", 0o644, false},
		{"configs/lbd.toml", "/usr/share/doc/lbd/examples/lbd.toml", 0o644, false},
		{"configs/services.toml", "/usr/share/doc/lbd/examples/services.toml", 0o644, false},
		{"configs/vrrp-only.toml", "/usr/share/doc/lbd/examples/vrrp-only.toml", 0o644, false},
		{"scripts/realserver.sh", "/usr/share/doc/lbd/examples/realserver.sh", 0o755, false},
	}
	for _, f := range g.files {
		list = append(list, f)
	}
	return list, nil
}

type generator struct {
	dir, lbd, lbctl string
	files           []file
	err             error
}

// help runs a binary for its help text (lbd prints it on stderr).
func (g *generator) help(bin string, args ...string) string {
	if g.err != nil {
		return ""
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "HOME=/nonexistent", "LBCTL_TOKEN=")
	if err := cmd.Run(); err != nil && out.Len() == 0 {
		g.err = fmt.Errorf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return out.String()
}

func (g *generator) write(name, dst string, mode fs.FileMode, data []byte) {
	if g.err != nil {
		return
	}
	p := filepath.Join(g.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		g.err = err
		return
	}
	g.files = append(g.files, file{Src: p, Dst: dst, Mode: mode})
}

// writeMan stores a gzip'ed man page (Debian policy: compressed, -n).
func (g *generator) writeMan(page string, section int, roff string) {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write([]byte(roff))
	zw.Close()
	g.write(page+"."+fmt.Sprint(section)+".gz", fmt.Sprintf("/usr/share/man/man%d/%s.%d.gz", section, page, section), 0o644, b.Bytes())
}

// roffText escapes text for a no-fill roff block.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n"
}

func manHeader(name string, section int, summary string) string {
	return fmt.Sprintf(".TH %s %d \"\" \"lbd\" \"lbd manual\"\n.SH NAME\n%s \\- %s\n", strings.ToUpper(name), section, name, summary)
}

func (g *generator) manLbd() {
	h := g.help(g.lbd, "-h")
	var b strings.Builder
	b.WriteString(manHeader("lbd", 8, "Layer-4 load-balancer director (IPVS, health checks, VRRP)"))
	b.WriteString(".SH SYNOPSIS AND OPTIONS\n.nf\n")
	b.WriteString(roffText(h))
	b.WriteString(".fi\n.SH SIGNALS\nHUP reloads the configuration (an invalid file is refused and the running state kept); TERM and INT stop gracefully (a VRRP master resigns first).\n")
	b.WriteString(".SH FILES\n/etc/lbd/lbd.toml, /run/lbd/\n.SH SEE ALSO\nlbctl(8), lbd.toml(5), /usr/share/doc/lbd/README.md\n")
	g.writeMan("lbd", 8, b.String())
}

var cobraCommand = regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)\s{2,}\S`)

// lbctlCommands lists the subcommands from lbctl's own help.
func lbctlCommands(help string) []string {
	_, after, _ := strings.Cut(help, "Available Commands:")
	after, _, _ = strings.Cut(after, "\n\n")
	var cmds []string
	for _, m := range cobraCommand.FindAllStringSubmatch(after, -1) {
		if m[1] != "help" && m[1] != "completion" {
			cmds = append(cmds, m[1])
		}
	}
	return cmds
}

func (g *generator) manLbctl() {
	h := g.help(g.lbctl, "--help")
	var b strings.Builder
	b.WriteString(manHeader("lbctl", 8, "control a running lbd through its API"))
	b.WriteString(".SH DESCRIPTION\n.nf\n" + roffText(h) + ".fi\n")
	for _, c := range lbctlCommands(h) {
		b.WriteString(".SH COMMAND " + strings.ToUpper(c) + "\n.nf\n" + roffText(g.help(g.lbctl, c, "--help")) + ".fi\n")
	}
	b.WriteString(".SH SEE ALSO\nlbd(8), lbd.toml(5)\n")
	g.writeMan("lbctl", 8, b.String())
}

// manConfig turns the documented example configuration (every key with its
// meaning and default, in comments) into lbd.toml(5).
func (g *generator) manConfig(example string) {
	data, err := os.ReadFile(example)
	if err != nil {
		g.err = err
		return
	}
	var b strings.Builder
	b.WriteString(manHeader("lbd.toml", 5, "lbd configuration file"))
	b.WriteString(".SH DESCRIPTION\nlbd reads one TOML file, /etc/lbd/lbd.toml by default. Check a file with \\fBlbd -t -config FILE\\fR; every problem is reported as FILE:LINE: message. The annotated example below lists every key, its meaning and its default.\n")
	b.WriteString(".SH EXAMPLE\n.nf\n" + roffText(string(data)) + ".fi\n.SH SEE ALSO\nlbd(8), lbctl(8)\n")
	g.writeMan("lbd.toml", 5, b.String())
}

var lbdFlag = regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
var lbdSub = regexp.MustCompile(`(?m)^\s+lbd ([a-z]+) `)

func (g *generator) completions() {
	for _, sh := range []struct{ name, dst string }{
		{"bash", "/usr/share/bash-completion/completions/lbctl"},
		{"zsh", "/usr/share/zsh/vendor-completions/_lbctl"},
		{"fish", "/usr/share/fish/vendor_completions.d/lbctl.fish"},
	} {
		g.write("lbctl."+sh.name, sh.dst, 0o644, []byte(g.help(g.lbctl, "completion", sh.name)))
	}
	h := g.help(g.lbd, "-h")
	var flags, subs []string
	for _, m := range lbdFlag.FindAllStringSubmatch(h, -1) {
		flags = append(flags, "-"+m[1])
	}
	for _, m := range lbdSub.FindAllStringSubmatch(h, -1) {
		subs = append(subs, m[1])
	}
	if len(flags) == 0 || len(subs) == 0 {
		g.err = errors.New("lbd -h lists no flags or subcommands")
		return
	}
	words := strings.Join(append(append([]string{}, subs...), flags...), " ")
	bash := fmt.Sprintf(`# bash completion for lbd (generated from lbd -h)
_lbd() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	case $prev in
	-config|-o|-state) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
	-log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
	import) COMPREPLY=($(compgen -W "keepalived piranha" -- "$cur")); return ;;
	esac
	COMPREPLY=($(compgen -W %q -- "$cur"))
}
complete -F _lbd lbd
`, words)
	g.write("lbd.bash", "/usr/share/bash-completion/completions/lbd", 0o644, []byte(bash))
	var zsh strings.Builder
	zsh.WriteString("#compdef lbd\n# zsh completion for lbd (generated from lbd -h)\n_arguments \\\n")
	for _, f := range flags {
		zsh.WriteString(fmt.Sprintf("  '%s[]' \\\n", f))
	}
	zsh.WriteString(fmt.Sprintf("  '1:command:(%s)' '*:file:_files'\n", strings.Join(subs, " ")))
	g.write("_lbd", "/usr/share/zsh/vendor-completions/_lbd", 0o644, []byte(zsh.String()))
	var fish strings.Builder
	fish.WriteString("# fish completion for lbd (generated from lbd -h)\n")
	for _, s := range subs {
		fish.WriteString(fmt.Sprintf("complete -c lbd -n __fish_use_subcommand -a %s\n", s))
	}
	for _, f := range flags {
		fish.WriteString(fmt.Sprintf("complete -c lbd -o %s\n", strings.TrimPrefix(f, "-")))
	}
	g.write("lbd.fish", "/usr/share/fish/vendor_completions.d/lbd.fish", 0o644, []byte(fish.String()))
}

func script(name string) string { return filepath.Join("packaging", "deb", name) }

func buildDeb(list []file, version, arch, outDir string) (string, error) {
	var contents files.Contents
	for _, f := range list {
		c := &files.Content{Source: f.Src, Destination: f.Dst, FileInfo: &files.ContentFileInfo{Mode: f.Mode, Owner: "root", Group: "root"}}
		if f.Conf {
			c.Type = files.TypeConfigNoReplace
		}
		contents = append(contents, c)
	}
	contents = append(contents, &files.Content{Destination: "/etc/lbd", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o700}})
	info := &nfpm.Info{
		Name:          "lbd",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "lbd maintainers <lbd@localhost>",
		Description:   "Layer-4 load-balancer director: kernel IPVS, health checks, VRRP, web console\nlbd programs the kernel's IPVS table from one TOML file, checks the real\nservers, runs VRRP with a backup director and serves a web console on :3636.",
		Homepage:      "https://github.com/lbd/lbd",
		MTime:         time.Unix(0, 0).UTC(),
		Overridables: nfpm.Overridables{
			// Static Go binaries: no library dependencies.
			Recommends: []string{"ipvsadm"},
			Contents:   contents,
			Scripts: nfpm.Scripts{
				PostInstall: script("postinst"),
				PreRemove:   script("prerm"),
				PostRemove:  script("postrm"),
			},
		},
	}
	if err := nfpm.PrepareForPackager(nfpm.WithDefaults(info), "deb"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(outDir, fmt.Sprintf("lbd_%s_%s.deb", version, arch))
	tmp := out + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, w); err != nil {
		w.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// install copies the files under destDir, /usr/... moved to prefix; the
// unit's program path follows. An existing configuration is kept.
func install(list []file, destDir, prefix, gen string) error {
	for _, f := range list {
		dst := f.Dst
		switch {
		case strings.HasPrefix(dst, "/usr/"):
			dst = filepath.Join(prefix, strings.TrimPrefix(dst, "/usr/"))
		case strings.HasPrefix(dst, "/lib/"):
			dst = filepath.Join(prefix, dst)
		}
		target := filepath.Join(destDir, dst)
		data, err := os.ReadFile(f.Src)
		if err != nil {
			return err
		}
		if strings.HasSuffix(dst, ".service") {
			data = bytes.ReplaceAll(data, []byte("/usr/sbin/lbd"), []byte(filepath.Join(prefix, "sbin/lbd")))
		}
		if f.Conf {
			if _, err := os.Stat(target); err == nil {
				fmt.Printf("kept %s\n", target)
				continue
			}
		}
		dirMode := fs.FileMode(0o755)
		if f.Conf {
			dirMode = 0o700
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Dir(target)), 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), dirMode); err != nil {
			return err
		}
		if err := os.WriteFile(target+".tmp", data, f.Mode); err != nil {
			return err
		}
		if err := os.Chmod(target+".tmp", f.Mode); err != nil {
			return err
		}
		if err := os.Rename(target+".tmp", target); err != nil {
			return err
		}
		fmt.Printf("installed %s\n", target)
	}
	return nil
}
