package vrrp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// platform prepares the calling goroutine's OS thread (locked to it) for
// VRRP: it names the thread (ps -L, /proc/PID/task/TID/comm), gives it
// SCHED_FIFO at Config.RTPriority and locks the process's memory when
// Config.LockMemory is set. A kernel that refuses (no CAP_SYS_NICE, an
// RT budget of 0 in a cgroup, RLIMIT_MEMLOCK) is logged once per Run and
// the instance runs on as an ordinary thread: a director that cannot get
// real-time scheduling must still fail over.
func (in *Instance) platform(name string) {
	if b, err := unix.BytePtrFromString(name); err == nil {
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
	}
	if in.cfg.RTPriority > 0 {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(in.cfg.RTPriority)}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			in.log.Warn("vrrp: the kernel refused real-time scheduling; the VRRP thread runs at normal priority",
				"thread", name, "rt_priority", in.cfg.RTPriority, "err", err)
		} else {
			in.log.Info("vrrp: real-time scheduling", "thread", name, "policy", "SCHED_FIFO", "rt_priority", in.cfg.RTPriority)
		}
	}
	if in.cfg.LockMemory && name == "lbd-vrrp" {
		if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
			in.log.Warn("vrrp: the kernel refused to lock memory (mlockall); pages may be swapped out",
				"err", err)
		} else {
			in.log.Info("vrrp: memory locked (mlockall): no page of lbd is swapped out")
		}
	}
}
