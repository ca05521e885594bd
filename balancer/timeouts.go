package balancer

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Timeouts are the kernel's IPVS connection timeouts (ipvsadm --set), one
// set per network namespace: how long an idle established TCP connection,
// a TCP connection after the client's FIN, and a UDP flow stay in the
// connection table. A zero field leaves the kernel's value alone.
type Timeouts struct {
	TCP    time.Duration
	TCPFin time.Duration
	UDP    time.Duration
}

// The kernel's own timeouts (ip_vs_proto_tcp.c, ip_vs_proto_udp.c), for
// documentation and the Fake.
const (
	KernelTCPTimeout    = 900 * time.Second
	KernelTCPFinTimeout = 120 * time.Second
	KernelUDPTimeout    = 300 * time.Second
)

// MaxTimeout is the largest timeout the kernel accepts: INT_MAX / HZ
// seconds with HZ up to 1000.
const MaxTimeout = (1<<31 - 1) / 1000 * time.Second

// IsZero reports whether no timeout is set.
func (t Timeouts) IsZero() bool { return t == Timeouts{} }

func (t Timeouts) String() string {
	var parts []string
	for _, f := range t.fields() {
		if *f.v != 0 {
			parts = append(parts, f.name+"="+f.v.String())
		}
	}
	if len(parts) == 0 {
		return "kernel defaults"
	}
	return strings.Join(parts, " ")
}

type timeoutField struct {
	name string
	v    *time.Duration
}

func (t *Timeouts) fields() []timeoutField {
	return []timeoutField{{"tcp", &t.TCP}, {"tcpfin", &t.TCPFin}, {"udp", &t.UDP}}
}

func (t Timeouts) validate() error {
	var errs []error
	for _, f := range t.fields() {
		switch d := *f.v; {
		case d < 0:
			errs = append(errs, fmt.Errorf("balancer: %s timeout %v is negative", f.name, d))
		case d%time.Second != 0:
			errs = append(errs, fmt.Errorf("balancer: %s timeout %v must be whole seconds", f.name, d))
		case d > MaxTimeout:
			errs = append(errs, fmt.Errorf("balancer: %s timeout %v too long (at most %v)", f.name, d, MaxTimeout))
		}
	}
	return errors.Join(errs...)
}

// matches reports whether the kernel's timeouts k agree with every timeout
// t sets.
func (t Timeouts) matches(k Timeouts) bool {
	kf := k.fields()
	for i, f := range t.fields() {
		if *f.v != 0 && *f.v != *kf[i].v {
			return false
		}
	}
	return true
}

// syncTimeouts brings the kernel's timeouts to the wanted ones: read on a
// full pass or when the wanted ones changed, written only when they
// differ. Nothing is read or written while none is wanted.
func (r *Reconciler) syncTimeouts(full bool, p *passErrs) {
	want := r.timeouts
	if want.IsZero() {
		r.timeoutsSeen = nil
		return
	}
	if r.timeoutsSeen == nil || full || r.timeoutsDirty {
		cur, err := r.k.Timeouts()
		if !r.call(p, false, err) {
			return
		}
		r.timeoutsSeen = &cur
	}
	r.timeoutsDirty = false
	cur := *r.timeoutsSeen
	if want.matches(cur) {
		return
	}
	if !r.call(p, true, r.k.SetTimeouts(want)) {
		r.timeoutsSeen = nil
		return
	}
	r.log.Info("balancer: IPVS timeouts set", "want", want.String(), "were", cur.String())
	kf, wf := cur.fields(), want.fields()
	for i := range kf {
		if *wf[i].v != 0 {
			*kf[i].v = *wf[i].v
		}
	}
	r.timeoutsSeen = &cur
}
