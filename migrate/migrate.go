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
	RemainingBytes   uint64 `json:"remaining_bytes"`   // dirty memory still to send
	TotalBytes       uint64 `json:"total_bytes"`       // guest RAM
	PagesSent        uint64 `json:"pages_sent"`        // with data
	ZeroPagesSent    uint64 `json:"zero_pages_sent"`   // as a flag only
	DirtyRate        uint64 `json:"dirty_rate_bytes_per_s"`
	Bandwidth        uint64 `json:"bandwidth_bytes_per_s"`
	ThrottlePercent  int    `json:"throttle_percent"`
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
