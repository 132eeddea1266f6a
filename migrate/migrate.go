package migrate

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/ternvm/tern/migrate/snapshot"
)

// Phase is where a migration stands.
type Phase string

// The phases a migration passes through, and the three it can end in.
const (
	PhaseSetup       Phase = "setup"         // connected, handshake under way
	PhasePreCopy     Phase = "pre-copy"      // the guest runs while its memory is copied
	PhaseStopAndCopy Phase = "stop-and-copy" // the guest is paused, the last pages and its state go
	PhaseCompleted   Phase = "completed"     // the destination runs the guest
	PhaseFailed      Phase = "failed"        // the guest runs on at the source (or see ErrOutcomeUnknown)
	PhaseCancelled   Phase = "cancelled"     // cancelled or timed out; the guest runs on at the source
)

// Status is a migration's progress as the source sees it, in the shape
// GET /migration and `tern migrate send --output json` print.
type Status struct {
	Phase Phase `json:"phase"`
	// Round counts pre-copy rounds; the first sends every page the guest
	// touched, later ones what it dirtied meanwhile.
	Round            int    `json:"round"`
	BytesTransferred uint64 `json:"bytes_transferred"` // on the wire so far, headers included
	RemainingBytes   uint64 `json:"remaining_bytes"`   // dirty memory (and disk) still to send
	TotalBytes       uint64 `json:"total_bytes"`       // guest RAM
	PagesSent        uint64 `json:"pages_sent"`        // with data
	ZeroPagesSent    uint64 `json:"zero_pages_sent"`   // as a flag only
	DirtyRate        uint64 `json:"dirty_rate_bytes_per_s"`
	Bandwidth        uint64 `json:"bandwidth_bytes_per_s"`
	ThrottlePercent  int    `json:"throttle_percent"`

	// With streamed disks: their size in all, the bytes of their data
	// sent (zero ranges go as a flag and are not counted), and what of
	// RemainingBytes is disk.
	DiskTotalBytes     uint64 `json:"disk_total_bytes,omitempty"`
	DiskBytesSent      uint64 `json:"disk_bytes_sent,omitempty"`
	DiskRemainingBytes uint64 `json:"disk_remaining_bytes,omitempty"`

	// ExpectedDowntimeMS is what stop-and-copy would take now, at the
	// measured bandwidth.
	ExpectedDowntimeMS float64 `json:"expected_downtime_ms"`
	// DowntimeMS, once completed: from the source's vCPUs stopping to the
	// destination confirming its vCPUs run.
	DowntimeMS  float64 `json:"downtime_ms"`
	TotalTimeMS float64 `json:"total_time_ms"`
	Error       string  `json:"error,omitempty"`
}

// Hello opens a migration: what the destination checks before a single
// page is copied.
type Hello struct {
	// Regions is guest RAM's layout; pages are numbered over the regions
	// in order, as in snapshot.Bitmap.
	Regions []snapshot.MemoryRegion `json:"regions"`
	// Config is the monitor's description of the VM (its configuration
	// and the guest's CPU); opaque to this package, bounded by the
	// message size.
	Config json.RawMessage `json:"config"`
	// Disks are the disks whose contents the migration streams, in the
	// order disk-extents messages number them; empty when the hosts
	// share the storage (the destination opens the same images).
	Disks []DiskInfo `json:"disks,omitempty"`
}

// DiskInfo describes one streamed disk.
type DiskInfo struct {
	// Name tells the destination's monitor which of its VM's disks this
	// is (vmm: the image path at the source); opaque here.
	Name string `json:"name"`
	// Size in bytes: every extent lies inside it.
	Size uint64 `json:"size"`
}

// Extent is a byte range of a disk.
type Extent struct {
	Off, Len uint64
}

// Source is the running VM a migration moves. vmm's VM implements it.
// Send calls it from one goroutine.
type Source interface {
	// Hello describes the VM for the destination's checks.
	Hello() (Hello, error)
	// Regions are guest RAM's host mappings, in page-number order.
	Regions() [][]byte
	// StartDirtyLog starts recording the pages the guest and the
	// monitor's devices write, and returns the pages the first round
	// must send: every page that may be non-zero. Pages it leaves clear
	// read as zero and are never sent.
	StartDirtyLog() (snapshot.Bitmap, error)
	// TakeDirty returns the pages written since StartDirtyLog or the
	// previous TakeDirty, and starts a new record.
	TakeDirty() (snapshot.Bitmap, error)
	// StopDirtyLog ends the record started by StartDirtyLog (after a
	// failed migration; the VM returns to its own tracking).
	StopDirtyLog() error
	// Throttle makes the vCPUs sleep for percent of their time (0: none).
	Throttle(percent int)
	// Pause stops the vCPUs and devices; Resume lets them run on.
	Pause() error
	Resume() error
	// State is the paused VM's whole state but memory (vCPUs, devices,
	// clocks), as snapshot sections.
	State() ([]snapshot.Section, error)
}

// DiskSource is a Source that can stream its disks' contents, for a
// destination that does not share its storage (SendOptions.WithDisks).
// Send calls it from the goroutine that calls the Source.
type DiskSource interface {
	// Disks describes the disks to stream, in order; the indexes below
	// count in it.
	Disks() ([]DiskInfo, error)
	// StartDiskLog starts recording the ranges the guest writes,
	// discards or zeroes on each disk, and returns for each disk the
	// ranges the first round must send: every range that may hold data.
	// Ranges it leaves out read as zero and are never sent.
	StartDiskLog() ([][]Extent, error)
	// ReadDisk fills p from disk i at off, which lies inside the disk.
	// It may run while the guest writes the disk: what changes meanwhile
	// is in the next TakeDiskDirty.
	ReadDisk(i int, p []byte, off int64) error
	// TakeDiskDirty returns, for each disk, the ranges changed since
	// StartDiskLog or the previous TakeDiskDirty, and starts a new
	// record. A change must be in the record once it is on the disk,
	// and once the source is paused every change is.
	TakeDiskDirty() ([][]Extent, error)
	// StopDiskLog ends the record.
	StopDiskLog() error
}

// DiskDestination is a Destination that can take streamed disks. Receive
// uses it when the source streams disks, and refuses such a migration
// without it.
type DiskDestination interface {
	// PrepareDisks makes a local copy of each disk, Size bytes reading
	// as zeroes. It comes before Prepare, so that the copies exist when
	// Prepare checks the VM's configuration. An error refuses the
	// migration; its text is sent to the source.
	PrepareDisks(disks []DiskInfo) error
	// WriteDisk writes p to disk i's copy at off; ZeroDisk makes n
	// bytes at off read as zeroes. The ranges lie inside the disk. Bytes
	// may land before their message's checksum is checked: a failed
	// migration's copies are to be discarded.
	WriteDisk(i int, p []byte, off int64) error
	ZeroDisk(i int, off, n int64) error
	// FinishDisks makes the copies durable and lets go of them, before
	// Load, which may open them as the VM's disks.
	FinishDisks() error
}

// Destination is the VM a migration builds. vmm implements it.
type Destination interface {
	// Prepare checks h against this host (CPU, memory, host resources)
	// and maps guest RAM, returning its regions for the pages to land in.
	// An error refuses the migration; its text is sent to the source.
	Prepare(h Hello) ([][]byte, error)
	// Load builds the VM from the final state; the guest does not run
	// yet. An error fails the migration before the source commits.
	Load(sections []snapshot.Section) error
	// Start runs the guest, once the source has committed.
	Start() error
}

// SendOptions tune a migration.
type SendOptions struct {
	// Downtime is the longest pause stop-and-copy may cause at the
	// measured bandwidth; zero means DefaultDowntime.
	Downtime time.Duration
	// Timeout bounds the whole migration; zero means none.
	Timeout time.Duration
	// ForceOnTimeout goes to stop-and-copy when Timeout passes instead of
	// cancelling.
	ForceOnTimeout bool
	// Bandwidth caps the bytes per second sent; zero means no cap.
	Bandwidth uint64
	// WithDisks streams the disks' contents with memory, for a
	// destination that does not share the source's storage: the source
	// must implement DiskSource, the destination DiskDestination.
	WithDisks bool
	// Progress, if set, is called with the status at every phase change
	// and after every round.
	Progress func(Status)
}

// DefaultDowntime is the stop-and-copy target when none is given.
const DefaultDowntime = 30 * time.Millisecond

// Errors Send and Receive wrap.
var (
	// ErrRefused: the destination refused the handshake; nothing was
	// copied and the guest runs on at the source.
	ErrRefused = errors.New("the destination refused the migration")
	// ErrCancelled: cancelled, or timed out with the cancel strategy; the
	// guest runs on at the source.
	ErrCancelled = errors.New("migration cancelled")
	// ErrOutcomeUnknown: the source committed but never heard that the
	// destination runs the guest. The guest stays paused at the source;
	// it may be running at the destination. An operator decides.
	ErrOutcomeUnknown = errors.New("the source committed but the destination did not confirm that it runs the guest: the guest stays paused here and may be running at the destination")
	// ErrProtocol: the stream broke a rule (framing, checksum, order,
	// bounds).
	ErrProtocol = errors.New("migration stream corrupt")
	// ErrAborted: the peer gave up and said why.
	ErrAborted = errors.New("the peer aborted the migration")
)

// ReceiveResult says how an incoming migration ended.
type ReceiveResult struct {
	// Started: dst runs the guest (Start returned nil).
	Started bool
	// ConfirmErr, when Started, says the source could not be told; it
	// then keeps the guest paused and reports ErrOutcomeUnknown.
	ConfirmErr error
}
