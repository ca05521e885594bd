//go:build !linux

package director

import "errors"

func openLoopbackVIPs() (vipHolder, error) {
	return nil, errors.New("holding VIPs on the loopback device needs Linux")
}
