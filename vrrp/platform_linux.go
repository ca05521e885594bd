package vrrp

import (
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// realtime names the calling goroutine's OS thread (locked to it) for
// ps -L and /proc/PID/task/TID/comm and gives SCHED_FIFO at
// Config.RTPriority to it and to every other thread of the process: the
// Go runtime wakes a goroutine (a timer, a packet) from whichever thread
// polls, and a thread that holds a P but waits behind ordinary processes
// stalls the VRRP thread as much as its own priority would (measured:
// `make bench-vrrp-stability`). Threads created later inherit the class.
// A kernel that refuses (no CAP_SYS_NICE, no RT budget in the cgroup) is
// logged and lbd runs on at normal priority: a director that cannot get
// real-time scheduling must still fail over.
func (in *Instance) realtime(name string) {
	if b, err := unix.BytePtrFromString(name); err == nil {
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(in.cfg.RTPriority)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		in.log.Warn("vrrp: the kernel refused real-time scheduling; lbd runs at normal priority",
			"thread", name, "rt_priority", in.cfg.RTPriority, "err", err)
		return
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	failed := 0
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			if unix.SchedSetAttr(tid, &attr, 0) != nil {
				failed++
			}
		}
	}
	in.log.Info("vrrp: real-time scheduling for lbd's threads", "thread", name, "policy", "SCHED_FIFO",
		"rt_priority", in.cfg.RTPriority, "threads", len(tasks), "refused", failed)
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
