//go:build !linux

package healthcheck

import (
	"errors"
	"syscall"
)

// markControl fails: firewall marks (and IPVS) are Linux's.
func markControl(uint32) func(network, address string, rc syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return errors.New("through-VIP checks need Linux (SO_MARK)")
	}
}
