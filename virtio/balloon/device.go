package balloon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ternvm/tern/virtio"
)

// Config chooses what the device offers.
type Config struct {
	// TargetMiB is the initial balloon size the host asks for.
	TargetMiB uint32
	// DeflateOnOOM offers VIRTIO_BALLOON_F_DEFLATE_ON_OOM.
	DeflateOnOOM bool
	// StatsPollInterval is how long the device keeps a statistics
	// buffer before it asks the driver for the next update. Zero means
	// the statistics queue is not offered.
	StatsPollInterval time.Duration
}

// Counters describe what the device has done since it was created.
type Counters struct {
	// InflatedPages are pages released to the host (duplicates within
	// one chain counted once).
	InflatedPages uint64
	// DeflatedPages are in-RAM pages the driver took back.
	DeflatedPages uint64
	// SkippedPFNs are PFNs the device ignored: outside guest RAM, or
	// past MaxPFNsPerChain in one chain.
	SkippedPFNs uint64
	// ReleaseFailures counts ranges the release function refused; their
	// pages stay backed and are not in InflatedPages.
	ReleaseFailures uint64
	// StatsUpdates counts statistics buffers received.
	StatsUpdates uint64
}

// Device is a virtio balloon. It implements virtio.Device.
type Device struct {
	// release gives inflated ranges back to the host; it is set once
	// and called only from the worker.
	release func(gpa, length uint64) error

	mu           sync.Mutex
	deflateOnOOM bool
	statsEvery   time.Duration
	numPages     uint32 // target, in pages
	actual       uint32 // as the driver last wrote it
	stats        statValues
	counters     Counters
	lastErr      error // last release failure
	// statsHeld: the driver's statistics buffer with head statsHead is
	// consumed but not yet returned; it must be returned to ask for the
	// next update, also after a snapshot is restored.
	statsHeld bool
	statsHead uint16
	active    *activation // nil while inactive

	// idleHook, set only by tests, hears when the worker stops touching
	// guest memory to wait (true) and when it wakes (false), so a test
	// playing the driver can write the rings without a data race.
	idleHook func(idle bool)
}

var _ virtio.Device = (*Device)(nil)

// ErrActive is returned by operations that need the device stopped.
var ErrActive = errors.New("virtio-balloon: device is active")

// New returns a balloon device. release is called with page-aligned,
// non-empty ranges of guest RAM that the guest gave up; it should drop
// their host backing (see ReleaseWithMadvise).
func New(cfg Config, release func(gpa, length uint64) error) (*Device, error) {
	if release == nil {
		return nil, errors.New("virtio-balloon: release function is nil")
	}
	if cfg.StatsPollInterval < 0 {
		return nil, fmt.Errorf("virtio-balloon: statistics interval %v is negative", cfg.StatsPollInterval)
	}
	pages, err := mibToPages(cfg.TargetMiB)
	if err != nil {
		return nil, err
	}
	return &Device{
		release:      release,
		deflateOnOOM: cfg.DeflateOnOOM,
		statsEvery:   cfg.StatsPollInterval,
		numPages:     pages,
	}, nil
}

// mibToPages converts a target to the page count num_pages holds.
func mibToPages(mib uint32) (uint32, error) {
	pages := uint64(mib) * pagesPerMiB
	if pages > math.MaxUint32 {
		return 0, fmt.Errorf("virtio-balloon: target of %d MiB is more than num_pages can hold (%d pages of %d bytes)",
			mib, uint64(math.MaxUint32), PageSize)
	}
	return uint32(pages), nil
}

// DeviceID is virtio.DeviceIDBalloon.
func (d *Device) DeviceID() uint32 { return virtio.DeviceIDBalloon }

// Features are FeatureStatsVQ when a statistics interval is set and
// FeatureDeflateOnOOM when asked for.
func (d *Device) Features() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.featuresLocked()
}

func (d *Device) featuresLocked() uint64 {
	var f uint64
	if d.statsEvery > 0 {
		f |= FeatureStatsVQ
	}
	if d.deflateOnOOM {
		f |= FeatureDeflateOnOOM
	}
	return f
}

// QueueMaxSizes lists the inflate and deflate queues, and the statistics
// queue when it is offered.
func (d *Device) QueueMaxSizes() []uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.statsEvery > 0 {
		return []uint16{QueueSize, QueueSize, QueueSize}
	}
	return []uint16{QueueSize, QueueSize}
}

// ReadConfig reads struct virtio_balloon_config: num_pages then actual.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	var cfg [configSize]byte
	d.mu.Lock()
	binary.LittleEndian.PutUint32(cfg[configNumPages:], d.numPages)
	binary.LittleEndian.PutUint32(cfg[configActual:], d.actual)
	d.mu.Unlock()
	if offset < configSize {
		copy(data, cfg[offset:])
	}
}

// WriteConfig lets the driver write actual; num_pages is the device's and
// writes to it are ignored. A write covering part of actual changes only
// those bytes.
func (d *Device) WriteConfig(offset uint64, data []byte) {
	if offset >= configSize {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var actual [4]byte
	binary.LittleEndian.PutUint32(actual[:], d.actual)
	for i, b := range data[:min(uint64(len(data)), configSize-offset)] {
		if at := offset + uint64(i); at >= configActual {
			actual[at-configActual] = b
		}
	}
	d.actual = binary.LittleEndian.Uint32(actual[:])
}

// Target is num_pages, the balloon size the host asks for, in pages.
func (d *Device) Target() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.numPages
}

// Actual is the balloon size in pages the driver last reported.
func (d *Device) Actual() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.actual
}

// Stats returns the statistics of the driver's latest update, keyed by
// StatName; tags the driver did not report are absent.
func (d *Device) Stats() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats.byName()
}

// Counters returns the device's counters.
func (d *Device) Counters() Counters {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counters
}

// LastReleaseError is the most recent error of the release function, or
// nil if it never failed.
func (d *Device) LastReleaseError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}
