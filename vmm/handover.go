package vmm

import (
	"errors"
	"fmt"
	"time"

	"github.com/ternvm/tern/virtio/block"
)

// relockPatience is how long a source whose migration failed after it
// handed its disks over waits for the destination to let go of them.
const relockPatience = 5 * time.Second

// handOverDisks flushes every disk and releases its lock, so that the
// migration's destination can take the images over. The caller holds
// lifeMu with the VM paused.
func (v *VM) handOverDisks() error {
	for _, s := range v.plat.virtio {
		b, ok := s.transport.Device().(*block.Device)
		if !ok {
			continue
		}
		// What the guest wrote must be on the shared storage before
		// the destination reads it.
		if err := b.Sync(); err != nil {
			return err
		}
		if err := b.Unlock(); err != nil {
			return err
		}
		v.handedOver = append(v.handedOver, b)
	}
	return nil
}

// retakeDisks locks the images handOverDisks released again, waiting up
// to patience for another holder (a failed destination closing) to let
// go. While one is held elsewhere the guest must not run here: the
// destination may be running it. The caller holds lifeMu.
func (v *VM) retakeDisks(patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for len(v.handedOver) > 0 {
		b := v.handedOver[0]
		err := b.Lock()
		switch {
		case err == nil:
			v.handedOver = v.handedOver[1:]
			continue
		case !errors.Is(err, block.ErrLocked) || time.Now().After(deadline):
			return fmt.Errorf("the guest cannot run here: %w (a migration handed it over; the destination may be running the guest)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
