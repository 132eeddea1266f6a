package vmm

import (
	"fmt"

	"github.com/ternvm/tern/mmds"
	virtionet "github.com/ternvm/tern/virtio/net"
)

// MMDS is the metadata service of a VM (Firecracker's MMDS): its
// configuration, and the store it serves, which the caller keeps to put
// and patch the document while the VM runs. A nil Store means an empty
// one of mmds.DefaultLimit bytes.
type MMDS struct {
	mmds.Config
	Store *mmds.Store
}

// netNames are the names Config.MMDS.Interfaces may use for net i: its ID,
// its TAP's name, or netN.
func netNames(i int, n virtionet.Config) []string {
	names := []string{n.TAP, fmt.Sprintf("net%d", i)}
	if n.ID != "" {
		names = append(names, n.ID)
	}
	return names
}

// validateMMDS checks the service's configuration and that every interface
// it names is one of the VM's.
func (c Config) validateMMDS() error {
	if c.MMDS == nil {
		return nil
	}
	if err := c.MMDS.Config.Validate(); err != nil {
		return err
	}
	for _, id := range c.MMDS.Interfaces {
		found := false
		for i, n := range c.Nets {
			for _, name := range netNames(i, n) {
				found = found || name == id
			}
		}
		if !found {
			return fmt.Errorf("MMDS: network interface %q: %w", id, ErrNoDevice)
		}
	}
	return nil
}

// mmdsFor returns the Stack serving the metadata service on net i, or nil
// when the guest does not reach the service there. The platform's service
// is made on first use.
func (p *platform) mmdsFor(i int, n virtionet.Config) (*mmds.Stack, error) {
	cfg := p.vm.cfg.MMDS
	if cfg == nil {
		return nil, nil
	}
	listed := false
	for _, id := range cfg.Interfaces {
		for _, name := range netNames(i, n) {
			listed = listed || name == id
		}
	}
	if !listed {
		return nil, nil
	}
	if p.mmds == nil {
		store := cfg.Store
		if store == nil {
			store = mmds.NewStore(0)
		}
		svc, err := mmds.New(cfg.Config, store)
		if err != nil {
			return nil, err
		}
		p.mmds = svc
		p.log.WithField("address", svc.Addr()).WithField("version", svc.Config().Version).Info("MMDS serving")
	}
	return p.mmds.NewStack(), nil
}

// mmdsRecord is what a snapshot keeps of the metadata service: its
// configuration, not its document.
func mmdsRecord(m *MMDS) *mmds.Config {
	if m == nil {
		return nil
	}
	c := m.Config
	c.Interfaces = append([]string(nil), c.Interfaces...)
	return &c
}

// restoredMMDS is the metadata service of a restored or received VM: the
// saved configuration serving store (a new empty one if nil). An
// interface the service named by a TAP that the restore replaced is named
// by its position (netN) instead, which the new TAP keeps.
func restoredMMDS(saved *mmds.Config, nets []virtionet.Config, restored []virtionet.Config, store *mmds.Store) *MMDS {
	if saved == nil {
		return nil
	}
	c := *saved
	c.Interfaces = nil
	for _, id := range saved.Interfaces {
		for i, n := range nets {
			if i < len(restored) && id == n.TAP && n.ID != id && restored[i].TAP != n.TAP {
				id = fmt.Sprintf("net%d", i)
				break
			}
		}
		c.Interfaces = append(c.Interfaces, id)
	}
	return &MMDS{Config: c, Store: store}
}
