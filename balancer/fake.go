package balancer

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"syscall"
)

// Op names a Kernel method, for the Fake's counters and error injection.
type Op uint8

// Kernel operations.
const (
	OpListServices Op = iota
	OpListDestinations
	OpCreateService
	OpUpdateService
	OpRemoveService
	OpCreateDestination
	OpUpdateDestination
	OpRemoveDestination
	OpListSyncDaemons
	OpStartSyncDaemon
	OpStopSyncDaemon
	OpConnCounts
	OpTimeouts
	OpSetTimeouts
	numOps
)

var opNames = [numOps]string{"list-services", "list-destinations", "create-service", "update-service",
	"remove-service", "create-destination", "update-destination", "remove-destination",
	"list-sync-daemons", "start-sync-daemon", "stop-sync-daemon", "conn-counts", "timeouts", "set-timeouts"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return "op?"
}

// IsWrite reports whether the operation changes the kernel's state (the
// table or the sync daemons).
func (o Op) IsWrite() bool {
	switch o {
	case OpCreateService, OpUpdateService, OpRemoveService,
		OpCreateDestination, OpUpdateDestination, OpRemoveDestination,
		OpStartSyncDaemon, OpStopSyncDaemon, OpSetTimeouts:
		return true
	}
	return false
}

// Call describes one Kernel call made to a Fake.
type Call struct {
	Op   Op
	Key  Key      // zero for OpListServices and the sync operations
	Dest DestKey  // set for destination writes
	Role SyncRole // set for OpStartSyncDaemon and OpStopSyncDaemon
}

// Fake is an in-memory Kernel that behaves like IPVS where the reconciler
// can tell (EEXIST on duplicates, ESRCH/ENOENT on missing entries, unknown
// schedulers refused), counts calls per operation and fails calls on demand.
// Tests change it behind the reconciler's back through the same methods and
// then ResetCounts.
type Fake struct {
	mu      sync.Mutex
	svcs    map[Key]*fakeService
	daemons map[SyncRole]SyncDaemon // as the kernel reports them
	conns   ConnCounts
	timeout Timeouts
	counts  [numOps]int
	inject  func(Call) error
}

type fakeService struct {
	st    ServiceStatus
	dests map[DestKey]*DestinationStatus
}

var _ Kernel = (*Fake)(nil)

// NewFake returns an empty fake table.
func NewFake() *Fake {
	return &Fake{svcs: make(map[Key]*fakeService), daemons: make(map[SyncRole]SyncDaemon),
		timeout: Timeouts{TCP: KernelTCPTimeout, TCPFin: KernelTCPFinTimeout, UDP: KernelUDPTimeout}}
}

var knownSchedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true, "dh": true,
	"sh": true, "sed": true, "nq": true, "fo": true, "ovf": true, "mh": true, "twos": true,
}

// Inject makes every later call first ask f; a non-nil error fails the call
// without touching the table (and the call is still counted). nil removes
// the hook.
func (f *Fake) Inject(fn func(Call) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = fn
}

// Count returns how many calls of op were made since the last ResetCounts.
func (f *Fake) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// Writes returns the number of write calls since the last ResetCounts.
func (f *Fake) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for op := range numOps {
		if op.IsWrite() {
			n += f.counts[op]
		}
	}
	return n
}

// ResetCounts zeroes the call counters.
func (f *Fake) ResetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts = [numOps]int{}
}

// SetConns sets a destination's connection counters (traffic simulation).
func (f *Fake) SetConns(key Key, dk DestKey, active, inactive int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.svcs[key]
	if s == nil || s.dests[dk] == nil {
		return false
	}
	s.dests[dk].ActiveConns, s.dests[dk].InactiveConns = active, inactive
	return true
}

// Table returns the whole fake table, sorted, for assertions.
func (f *Fake) Table() Table {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t Table
	for _, s := range f.svcs {
		vs := VirtualService{Service: s.st.Service}
		for _, d := range s.dests {
			vs.Destinations = append(vs.Destinations, d.Destination)
		}
		sortDests(vs.Destinations)
		t.Services = append(t.Services, vs)
	}
	slices.SortFunc(t.Services, func(a, b VirtualService) int { return compareKeys(a.Key, b.Key) })
	return t
}

func (f *Fake) begin(c Call) error {
	f.counts[c.Op]++
	if f.inject != nil {
		return f.inject(c)
	}
	return nil
}

// Services implements Kernel.
func (f *Fake) Services() ([]ServiceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpListServices}); err != nil {
		return nil, err
	}
	out := make([]ServiceStatus, 0, len(f.svcs))
	for _, s := range f.svcs {
		out = append(out, s.st)
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return compareKeys(a.Key, b.Key) })
	return out, nil
}

// Destinations implements Kernel.
func (f *Fake) Destinations(key Key) ([]DestinationStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpListDestinations, Key: key}); err != nil {
		return nil, err
	}
	s := f.svcs[key]
	if s == nil {
		return nil, nil
	}
	out := make([]DestinationStatus, 0, len(s.dests))
	for _, d := range s.dests {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DestinationStatus) int { return compareDestKeys(a.Key(), b.Key()) })
	return out, nil
}

func (f *Fake) checkService(s Service) error {
	if s.Key.validate() != nil {
		return syscall.EINVAL
	}
	if !knownSchedulers[s.normalized().Scheduler] {
		return syscall.ENOENT
	}
	return nil
}

// CreateService implements Kernel.
func (f *Fake) CreateService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpCreateService, Key: s.Key}); err != nil {
		return err
	}
	if err := f.checkService(s); err != nil {
		return opErr("create service", s.Key, nil, err)
	}
	if f.svcs[s.Key] != nil {
		return opErr("create service", s.Key, nil, syscall.EEXIST)
	}
	f.svcs[s.Key] = &fakeService{st: ServiceStatus{Service: s.normalized()}, dests: make(map[DestKey]*DestinationStatus)}
	return nil
}

// UpdateService implements Kernel.
func (f *Fake) UpdateService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpUpdateService, Key: s.Key}); err != nil {
		return err
	}
	if err := f.checkService(s); err != nil {
		return opErr("update service", s.Key, nil, err)
	}
	cur := f.svcs[s.Key]
	if cur == nil {
		return opErr("update service", s.Key, nil, syscall.ESRCH)
	}
	cur.st.Service = s.normalized()
	return nil
}

// RemoveService implements Kernel.
func (f *Fake) RemoveService(key Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpRemoveService, Key: key}); err != nil {
		return err
	}
	if f.svcs[key] == nil {
		return opErr("remove service", key, nil, syscall.ESRCH)
	}
	delete(f.svcs, key)
	return nil
}

func (f *Fake) destCall(op Op, key Key, dk DestKey) (*fakeService, error) {
	if err := f.begin(Call{Op: op, Key: key, Dest: dk}); err != nil {
		return nil, err
	}
	s := f.svcs[key]
	if s == nil {
		return nil, destErr(op, key, dk, syscall.ESRCH)
	}
	return s, nil
}

func destErr(op Op, key Key, dk DestKey, err error) error {
	name := map[Op]string{OpCreateDestination: "add real server", OpUpdateDestination: "update real server",
		OpRemoveDestination: "remove real server"}[op]
	return opErr(name, key, &dk, err)
}

// checkDest refuses what the kernel refuses: a real server of another
// family unless tunnelled.
func checkDest(s *fakeService, d Destination) error {
	if !d.Addr.IsValid() || (familyOf(d.Addr) != s.st.Family && d.Forwarding != Tunnel) {
		return syscall.EINVAL
	}
	return nil
}

// CreateDestination implements Kernel.
func (f *Fake) CreateDestination(key Key, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.destCall(OpCreateDestination, key, d.Key())
	if err != nil {
		return err
	}
	if err := checkDest(s, d); err != nil {
		return destErr(OpCreateDestination, key, d.Key(), err)
	}
	if s.dests[d.Key()] != nil {
		return destErr(OpCreateDestination, key, d.Key(), syscall.EEXIST)
	}
	s.dests[d.Key()] = &DestinationStatus{Destination: d}
	return nil
}

// UpdateDestination implements Kernel.
func (f *Fake) UpdateDestination(key Key, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.destCall(OpUpdateDestination, key, d.Key())
	if err != nil {
		return err
	}
	if err := checkDest(s, d); err != nil {
		return destErr(OpUpdateDestination, key, d.Key(), err)
	}
	cur := s.dests[d.Key()]
	if cur == nil {
		return destErr(OpUpdateDestination, key, d.Key(), syscall.ENOENT)
	}
	cur.Destination = d
	return nil
}

// RemoveDestination implements Kernel.
func (f *Fake) RemoveDestination(key Key, dk DestKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.destCall(OpRemoveDestination, key, dk)
	if err != nil {
		return err
	}
	if s.dests[dk] == nil {
		return destErr(OpRemoveDestination, key, dk, syscall.ENOENT)
	}
	delete(s.dests, dk)
	return nil
}

// SyncDaemons implements SyncKernel: the running daemons, master first, as
// the kernel reports them (defaults filled in, length clamped; a backup's
// default length as on a 1500-byte MTU).
func (f *Fake) SyncDaemons() ([]SyncDaemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpListSyncDaemons}); err != nil {
		return nil, err
	}
	out := make([]SyncDaemon, 0, len(f.daemons))
	for _, d := range f.daemons {
		out = append(out, d)
	}
	sortSyncDaemons(out)
	return out, nil
}

// StartSyncDaemon implements SyncKernel with the kernel's answers: EINVAL
// for what it refuses, EEXIST when the role runs.
func (f *Fake) StartSyncDaemon(d SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpStartSyncDaemon, Role: d.Role}); err != nil {
		return err
	}
	return f.startLocked(d)
}

// startLocked starts d with f.mu held (an Inject hook may call it to act
// as someone else racing lbd).
func (f *Fake) startLocked(d SyncDaemon) error {
	if err := d.validate(); err != nil {
		return syncOpErr("start", d.Role, d.Interface, syscall.EINVAL)
	}
	if _, ok := f.daemons[d.Role]; ok {
		return syncOpErr("start", d.Role, d.Interface, syscall.EEXIST)
	}
	f.daemons[d.Role] = fakeKernelDaemon(d)
	return nil
}

// fakeKernelDaemon is d as the kernel holds it once started.
func fakeKernelDaemon(d SyncDaemon) SyncDaemon {
	d = d.normalized()
	if d.MaxLen == 0 { // a backup: from the MTU, taken as 1500
		d.MaxLen = syncMTU - d.headerLen()
	}
	return d
}

// StopSyncDaemon implements SyncKernel (ESRCH when the role does not run).
func (f *Fake) StopSyncDaemon(role SyncRole) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpStopSyncDaemon, Role: role}); err != nil {
		return err
	}
	if _, ok := f.daemons[role]; !ok {
		return syncOpErr("stop", role, "", syscall.ESRCH)
	}
	delete(f.daemons, role)
	return nil
}

// ConnCounts implements SyncKernel: what SetConnCounts last set.
func (f *Fake) ConnCounts() (ConnCounts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpConnCounts}); err != nil {
		return ConnCounts{}, err
	}
	return f.conns, nil
}

// SetConnCounts sets what ConnCounts returns (traffic simulation).
func (f *Fake) SetConnCounts(c ConnCounts) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = c
}

// Timeouts implements Kernel: the kernel's defaults until set.
func (f *Fake) Timeouts() (Timeouts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpTimeouts}); err != nil {
		return Timeouts{}, err
	}
	return f.timeout, nil
}

// SetTimeouts implements Kernel: the non-zero timeouts replace the
// table's; EINVAL for what the kernel refuses.
func (f *Fake) SetTimeouts(t Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(Call{Op: OpSetTimeouts}); err != nil {
		return err
	}
	if t.validate() != nil {
		return fmt.Errorf("balancer: set IPVS timeouts %s: %w", t, syscall.EINVAL)
	}
	kf, tf := f.timeout.fields(), t.fields()
	for i := range kf {
		if *tf[i].v != 0 {
			*kf[i].v = *tf[i].v
		}
	}
	return nil
}

func compareKeys(a, b Key) int {
	return cmp.Or(
		cmp.Compare(a.Family, b.Family),
		cmp.Compare(a.Fwmark, b.Fwmark),
		cmp.Compare(a.Protocol, b.Protocol),
		a.Addr.Compare(b.Addr),
		cmp.Compare(a.Port, b.Port),
	)
}

func compareDestKeys(a, b DestKey) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

func sortDests(ds []Destination) {
	slices.SortFunc(ds, func(a, b Destination) int { return compareDestKeys(a.Key(), b.Key()) })
}
