//go:build !linux

package flowguard

import "errors"

// errNotLinux is what Open fails with outside Linux: the guards are
// nftables chains. Target, Guard and Fake build anywhere, so the director
// does too.
var errNotLinux = errors.New("flowguard: the guards need nftables (Linux)")

// NFT is the nftables guard; outside Linux Open never returns one.
type NFT struct{}

var _ Guard = (*NFT)(nil)

// Open fails outside Linux.
func Open() (*NFT, error) { return nil, errNotLinux }

// SetQuiet implements Guard.
func (*NFT) SetQuiet([]Target) error { return errNotLinux }

// SetHold implements Guard.
func (*NFT) SetHold([]Target) error { return errNotLinux }

// Counters returns how many packets each guard has dropped.
func (*NFT) Counters() (quiet, hold uint64, err error) { return 0, 0, errNotLinux }

// Close implements Guard.
func (*NFT) Close() error { return nil }
