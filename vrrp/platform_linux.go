package vrrp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// realtime names the calling goroutine's OS thread (locked to it) for
// ps -L and /proc/PID/task/TID/comm and gives it SCHED_FIFO at
// Config.RTPriority. A kernel that refuses (no CAP_SYS_NICE, no RT budget
// in the cgroup) is logged and the thread runs on at normal priority: a
// director that cannot get real-time scheduling must still fail over.
func (in *Instance) realtime(name string) {
	if b, err := unix.BytePtrFromString(name); err == nil {
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(in.cfg.RTPriority)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		in.log.Warn("vrrp: the kernel refused real-time scheduling; the VRRP thread runs at normal priority",
			"thread", name, "rt_priority", in.cfg.RTPriority, "err", err)
		return
	}
	in.log.Info("vrrp: real-time scheduling", "thread", name, "policy", "SCHED_FIFO", "rt_priority", in.cfg.RTPriority)
}

// lockMemory locks every page of the process, present and future, in RAM
// (Config.LockMemory). A refusal (RLIMIT_MEMLOCK without CAP_IPC_LOCK) is
// logged; the instance runs anyway.
func (in *Instance) lockMemory() {
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
		in.log.Warn("vrrp: the kernel refused to lock memory (mlockall); pages may be swapped out", "err", err)
		return
	}
	in.log.Info("vrrp: memory locked (mlockall): no page of lbd is swapped out")
}
