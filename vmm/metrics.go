package vmm

import (
	"sync/atomic"

	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
)

// exitCounts counts one vCPU's exits to tern by kind.
type exitCounts struct {
	ioIn, ioOut, mmioRead, mmioWrite atomic.Uint64
}

func (e *exitCounts) io(in bool) {
	if in {
		e.ioIn.Add(1)
	} else {
		e.ioOut.Add(1)
	}
}

func (e *exitCounts) mmio(write bool) {
	if write {
		e.mmioWrite.Add(1)
	} else {
		e.mmioRead.Add(1)
	}
}

// ExitCounts are vCPU exits to tern by kind, over all vCPUs.
type ExitCounts struct {
	IOIn, IOOut, MMIORead, MMIOWrite uint64
}

// DiskMetrics are one disk's counters.
type DiskMetrics struct {
	Name string // diskN, in the order the guest sees the disks
	ID   string // the disk's serial (DiskConfig.ID), if any
	block.Counters
}

// NetMetrics are one network interface's counters.
type NetMetrics struct {
	Name string // netN, in the order of Config.Nets
	TAP  string
	virtionet.Counters
}

// Metrics are the VM's counters, each counted since the VM was built
// (a restored VM's network counters go on from the snapshot's).
type Metrics struct {
	Exits ExitCounts
	Disks []DiskMetrics
	Nets  []NetMetrics
	// ConsoleDropped is the console output dropped because its reader
	// did not keep up, in bytes.
	ConsoleDropped uint64
}

// Metrics returns the VM's counters as they are now. It is safe to call
// at any time, from any goroutine.
func (v *VM) Metrics() Metrics {
	var m Metrics
	v.vcpuMu.Lock()
	for _, c := range v.vcpus {
		m.Exits.IOIn += c.exits.ioIn.Load()
		m.Exits.IOOut += c.exits.ioOut.Load()
		m.Exits.MMIORead += c.exits.mmioRead.Load()
		m.Exits.MMIOWrite += c.exits.mmioWrite.Load()
	}
	v.vcpuMu.Unlock()
	m.ConsoleDropped = v.ConsoleDropped()
	if v.plat == nil {
		return m
	}
	for _, d := range v.plat.limits.disks {
		m.Disks = append(m.Disks, DiskMetrics{Name: d.name, ID: v.cfg.Disks[d.index].ID, Counters: d.dev.Counters()})
	}
	for _, n := range v.plat.limits.nets {
		m.Nets = append(m.Nets, NetMetrics{Name: n.name, TAP: v.cfg.Nets[n.index].TAP, Counters: n.dev.Counters()})
	}
	return m
}
