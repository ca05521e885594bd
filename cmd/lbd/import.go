package main

// `lbd import keepalived|piranha FILE`: a keepalived.conf or a piranha
// lvs.cf turned into an lbd.toml, with every construct that did not carry
// over listed on stderr as FILE:LINE: why.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"lbd/config"
	"lbd/importer"
)

func runImport(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("lbd import", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("o", "", "write the configuration to `file` (atomically, mode 0600) instead of standard output")
	force := fset.Bool("f", false, "with -o: replace an existing file")
	backup := fset.Bool("backup", false, "piranha: import for the backup director (default: the primary)")
	vrid := fset.Int("vrid", 0, "piranha: VRRP router id for the pair (default 51; unique on the segment)")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "usage: lbd import keepalived [-o FILE [-f]] keepalived.conf\n       lbd import piranha [-o FILE [-f]] [-backup] [-vrid N] lvs.cf\n\n"+
			"Prints an lbd.toml equivalent to the file; what could not be mapped is\nlisted on stderr as FILE:LINE: why. The result is checked as lbd -t would.\n\nflags:\n")
		fset.PrintDefaults()
	}
	if len(args) == 0 || (args[0] != "keepalived" && args[0] != "piranha") {
		fset.Usage()
		return 2
	}
	kind := args[0]
	// Flags may come before or after the file name.
	var files []string
	for rest := args[1:]; ; {
		if err := fset.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fset.NArg() == 0 {
			break
		}
		files = append(files, fset.Arg(0))
		rest = fset.Args()[1:]
	}
	if len(files) != 1 {
		fset.Usage()
		return 2
	}
	src := files[0]
	var res *importer.Result
	var err error
	if kind == "keepalived" {
		res, err = importer.Keepalived(src)
	} else {
		res, err = importer.Piranha(src, importer.PiranhaOptions{Backup: *backup, VRID: *vrid})
	}
	if err != nil {
		fmt.Fprintf(stderr, "lbd import: %v\n", err)
		return 1
	}
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, n.String())
	}
	name := *out
	if name == "" {
		name = "lbd.toml"
	}
	data, err := res.Encode(name)
	if data == nil {
		fmt.Fprintf(stderr, "lbd import: %v\n", err)
		return 1
	}
	if err != nil {
		var probs config.Problems
		if errors.As(err, &probs) {
			fmt.Fprintln(stderr, "lbd import: lbd refuses the result; fix these in the output (lines of the output):")
			for _, p := range probs {
				fmt.Fprintf(stderr, "  %s\n", p.String())
			}
		} else {
			fmt.Fprintf(stderr, "lbd import: %v\n", err)
		}
		if *out == "" {
			stdout.Write(data)
		}
		return 1
	}
	if *out == "" {
		stdout.Write(data)
		return 0
	}
	if _, err := os.Lstat(*out); err == nil && !*force {
		fmt.Fprintf(stderr, "lbd import: %s exists; not replaced (use -f)\n", *out)
		return 1
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "lbd import: %v\n", err)
		return 1
	}
	if err := config.WriteFileAtomic(*out, data, 0o600); err != nil {
		fmt.Fprintf(stderr, "lbd import: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "lbd import: wrote %s\n", *out)
	return 0
}
