//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
	return err == nil
}

// readPasswordNoEcho reads a line from the terminal with echo off. The
// terminal is restored even when the user presses Ctrl-C.
func readPasswordNoEcho(tty *os.File, w io.Writer, prompt string) (string, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &quiet); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			_ = unix.IoctlSetTermios(fd, ioctlSetTermios, old)
			fmt.Fprintln(w)
			os.Exit(130)
		case <-done:
		}
	}()
	defer func() {
		close(done)
		signal.Stop(sigs)
		_ = unix.IoctlSetTermios(fd, ioctlSetTermios, old)
	}()

	fmt.Fprint(w, prompt)
	var b []byte
	buf := make([]byte, 1)
	for {
		n, err := tty.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b = append(b, buf[0])
			continue
		}
		if err != nil {
			fmt.Fprintln(w)
			if errors.Is(err, io.EOF) {
				return "", errors.New("no password entered")
			}
			return "", fmt.Errorf("terminal: %w", err)
		}
	}
	fmt.Fprintln(w)
	return strings.TrimRight(string(b), "\r"), nil
}
