package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/ternvm/tern/migrate/snapshot"
)

// A snapshot stream is a migration into a byte stream: exactly what a
// source sends for a guest that is already paused, in one stop-and-copy
// pass (PROTOCOL.md §5). It needs no answers, so it can go to a file, a
// pipe or an object store's upload, and ReadSnapshot reads it back with
// Receive's own checks: the same framing, checksums, bounds and order.

// SnapshotSource is a paused VM written as a snapshot stream. vmm's VM
// implements it for VM.SnapshotTo.
type SnapshotSource interface {
	// Hello describes the VM, as Source.Hello.
	Hello() (Hello, error)
	// Regions are guest RAM's host mappings, in page-number order.
	Regions() [][]byte
	// Pages returns every page that may be non-zero; pages it leaves
	// clear read as zero and are not written.
	Pages() (snapshot.Bitmap, error)
	// State is the paused VM's whole state but memory.
	State() ([]snapshot.Section, error)
}

// SnapshotStats says what WriteSnapshot wrote.
type SnapshotStats struct {
	Bytes     uint64 // the whole stream, framing included
	Pages     uint64 // pages written with their data
	ZeroPages uint64 // pages written as a zero flag only
	// StateBytes is the state message's payload.
	StateBytes int
}

// WriteSnapshot writes src, which must stay paused throughout, to w as
// one snapshot stream: preamble, hello, pages messages, the state and the
// commit. Cancelling ctx stops it between messages; when w is a net.Conn
// every message must leave within a minute. A failed stream is
// incomplete: ReadSnapshot refuses it.
func WriteSnapshot(ctx context.Context, w io.Writer, src SnapshotSource) (stats SnapshotStats, err error) {
	s := &sender{ctx: ctx, mw: msgWriter{w: w}, dl: newDeadlines(w), start: time.Now(), limit: batchData}
	defer func() { stats.Bytes = s.mw.bytes }()
	mem, err := newLayout(src.Regions())
	if err != nil {
		return stats, fmt.Errorf("the VM's memory: %w", err)
	}
	s.mem = mem
	hello, err := src.Hello()
	if err != nil {
		return stats, fmt.Errorf("describing the VM: %w", err)
	}
	hello.Disks = nil // a snapshot names its disks, it does not carry them
	hp, err := json.Marshal(hello)
	if err != nil {
		return stats, fmt.Errorf("encoding the hello: %w", err)
	}
	bm, err := src.Pages()
	if err != nil {
		return stats, fmt.Errorf("listing the guest's pages: %w", err)
	}
	if err := s.checkBitmap(bm); err != nil {
		return stats, err
	}
	s.dl.write(writeTimeout)
	if err := s.mw.preamble(0); err != nil {
		return stats, err
	}
	if _, err := s.mw.write(msgHello, hp); err != nil {
		return stats, err
	}
	if err := s.sendPages(bm, true); err != nil {
		return stats, err
	}
	stats.Pages, stats.ZeroPages = s.st.PagesSent, s.st.ZeroPagesSent
	sections, err := src.State()
	if err != nil {
		return stats, fmt.Errorf("saving the VM state: %w", err)
	}
	if n := snapshot.EncodedSize(sections); n > snapshot.MaxStateSize {
		return stats, fmt.Errorf("the VM state is %d bytes, a stream carries at most %d", n, snapshot.MaxStateSize)
	}
	var state bytesWriter
	if err := snapshot.WriteState(&state, sections); err != nil {
		return stats, err
	}
	stats.StateBytes = len(state.b)
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	s.dl.write(writeTimeout)
	if _, err := s.mw.write(msgState, state.b); err != nil {
		return stats, err
	}
	if _, err := s.mw.write(msgCommit); err != nil {
		return stats, err
	}
	return stats, nil
}

// ReadSnapshot reads one snapshot stream from r into dst: Prepare with
// the hello, the pages into the regions it returns, Load with the state,
// and Start once the commit is read. A nil error means the whole stream
// was valid and dst.Start returned nil; any other outcome means dst is to
// be discarded. The checks are Receive's (a recorded migration stream is
// a snapshot stream too): a framing, checksum, bounds or order violation
// wraps ErrProtocol, a stream that ends early io.ErrUnexpectedEOF. A
// stream carrying disk contents is refused. Buffers grow only with the
// bytes that arrive, so a hostile header costs what the stream holds.
// Cancelling ctx stops it between messages, or at once when r is a
// net.Conn.
func ReadSnapshot(ctx context.Context, r io.Reader, dst Destination) error {
	// Receive returns nil exactly when dst started.
	if _, err := Receive(ctx, oneWay{Reader: r}, destOnly{dst}); err != nil {
		return fmt.Errorf("snapshot stream: %w", err)
	}
	return nil
}

// oneWay is a stream with nobody to answer: Receive's replies are
// dropped. It keeps r's deadlines when r has them, for ctx's interrupt.
type oneWay struct {
	io.Reader
}

func (oneWay) Write(p []byte) (int, error) { return len(p), nil }

func (o oneWay) SetReadDeadline(t time.Time) error {
	if d, ok := o.Reader.(deadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

func (oneWay) SetWriteDeadline(time.Time) error { return nil }

// destOnly hides any DiskDestination dst implements, so that a stream
// claiming to carry disks is refused before anything is written.
type destOnly struct{ d Destination }

func (d destOnly) Prepare(h Hello) ([][]byte, error)      { return d.d.Prepare(h) }
func (d destOnly) Load(sections []snapshot.Section) error { return d.d.Load(sections) }
func (d destOnly) Start() error                           { return d.d.Start() }
