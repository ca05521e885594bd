package main

import "golang.org/x/sys/unix"

// The termios requests: Linux's names; the BSDs' in tty_bsd.go.
const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)
