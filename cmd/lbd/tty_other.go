//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package main

import (
	"errors"
	"io"
	"os"
)

// isTerminal says whether f is a console: there lbd cannot turn echo off
// (see readPasswordNoEcho), so it refuses rather than show the password.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func readPasswordNoEcho(*os.File, io.Writer, string) (string, error) {
	return "", errors.New("cannot read a password without echo on this system; pipe it in: lbd passwd -config FILE < file")
}
