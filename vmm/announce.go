package vmm

import (
	"time"

	virtionet "github.com/ternvm/tern/virtio/net"
)

// announceDelays space out the announcements of a migrated guest's MAC
// addresses, as QEMU does: one frame can be lost while a bridge or switch
// is still busy, five over half a second are not.
var announceDelays = []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond}

// netDevices lists the VM's network devices.
func (p *platform) netDevices() []*virtionet.Device {
	var nets []*virtionet.Device
	for _, s := range p.virtio {
		if n, ok := s.transport.Device().(*virtionet.Device); ok {
			nets = append(nets, n)
		}
	}
	return nets
}

// announce tells the network where each of nets is now, from its TAP,
// until the rounds are done or the VM stops.
func (p *platform) announce(nets []*virtionet.Device) {
	if len(nets) == 0 {
		return
	}
	for round, d := range announceDelays {
		select {
		case <-p.vm.stopped:
			return
		case <-time.After(d):
		}
		for _, n := range nets {
			if err := n.Announce(); err != nil && round == 0 {
				p.log.WithError(err).Warn("announce the guest on the network")
			}
		}
	}
	p.log.WithField("interfaces", len(nets)).Debug("guest announced on the network (RARP)")
}
