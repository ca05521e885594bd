package balancer

import "github.com/cloudflare/ipvs"

// Open connects to IPVS in the current network namespace (of the calling
// thread). Close it when done.
//
// Every socket and file Open makes belongs to that namespace from then on,
// whichever thread later uses it: a caller that switches a locked thread
// into a namespace only needs to call Open there.
func Open() (*IPVS, error) {
	k, err := openIPVS(ipvs.New)
	if err != nil {
		return nil, err
	}
	k.daemons = openSyncConn()
	return k, nil
}
