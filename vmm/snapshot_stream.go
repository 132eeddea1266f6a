package vmm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/snapshot"
)

// A snapshot stream is the paused guest's migration written one way
// (migrate/PROTOCOL.md §7): one byte stream holding the configuration,
// memory and state, for a writer that cannot seek or hold two files (a
// pipe, a socket, an upload). RestoreFrom reads it with an incoming
// migration's checks and trust rules.

// SnapshotTo writes the paused VM to w as one snapshot stream, which
// RestoreFrom reads back. The VM stays paused. Unlike Snapshot it leaves
// the dirty page record alone: a later diff snapshot is still relative
// to the VM's previous snapshot directory (a diff cannot be merged onto a
// stream). Cancelling ctx stops the writing between messages; a stream
// cut short is refused by RestoreFrom. The result's Dir and paths are
// empty; StateBytes counts the state message, Memory the pages written.
func (v *VM) SnapshotTo(ctx context.Context, w io.Writer) (SnapshotResult, error) {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	start := time.Now()
	res := SnapshotResult{Kind: "full"}
	switch {
	case !v.life.running:
		return res, ErrNotRunning
	case v.life.migrating:
		return res, ErrMigrating
	case !v.life.paused:
		return res, ErrNotPaused
	}
	src := &streamSource{v: v}
	st, err := migrate.WriteSnapshot(ctx, w, src)
	if err != nil {
		return res, fmt.Errorf("snapshot stream: %w", err)
	}
	res.Took = time.Since(start)
	res.VCPUsTook = src.stateTook
	res.MemoryTook = res.Took - src.stateTook
	res.StateBytes = int64(st.StateBytes)
	res.MemoryBytes = v.mem.Size()
	res.Memory = snapshot.MemoryStats{
		TotalBytes: v.mem.Size(), StoredPages: st.Pages, StoredBytes: st.Pages * snapshot.PageSize,
		ZeroPages: v.mem.Size()/snapshot.PageSize - st.Pages,
	}
	res.StreamBytes = st.Bytes
	v.log.WithFields(logrus.Fields{
		"took": res.Took.String(), "stream-bytes": st.Bytes, "stored-bytes": res.Memory.StoredBytes, "total-bytes": res.MemoryBytes,
	}).Info("snapshot stream written")
	return res, nil
}

// streamSource is the paused VM as migrate.WriteSnapshot reads it; the
// caller holds lifeMu.
type streamSource struct {
	v         *VM
	stateTook time.Duration
}

func (s *streamSource) Hello() (migrate.Hello, error) {
	return (&migrationSource{v: s.v}).Hello()
}

func (s *streamSource) Regions() [][]byte {
	return (&migrationSource{v: s.v}).Regions()
}

// Pages are those the guest ever touched: the rest read as zero.
func (s *streamSource) Pages() (snapshot.Bitmap, error) {
	words, err := s.v.mem.Populated()
	if err != nil {
		return nil, err
	}
	return snapshot.Bitmap(words), nil
}

func (s *streamSource) State() ([]snapshot.Section, error) {
	t0 := time.Now()
	st, err := s.v.captureState()
	s.stateTook = time.Since(t0)
	if err != nil {
		return nil, err
	}
	return st.Sections(), nil
}

// RestoreFrom rebuilds a VM from a snapshot stream SnapshotTo wrote (or
// a recorded migration) read from r; opts are Restore's, without Dir.
// The host resources the stream names are confirmed exactly as for
// Restore (DiskPaths, TAPs, Bridges, VsockSocket, TrustSnapshotPaths),
// before anything is opened. Guest memory is fresh anonymous memory the
// stream's pages are copied into. Decoding is bounded by the migration
// protocol's limits, and every message is checksummed: a stream that is
// damaged or cut short is refused with an error matching ErrBadSnapshot
// (and migrate.ErrProtocol or io.ErrUnexpectedEOF), and nothing of the
// VM is left. On success the guest has not run yet: Start (or Run)
// resumes it where it stopped.
func RestoreFrom(r io.Reader, opts RestoreOptions) (_ *VM, err error) {
	called := time.Now()
	if opts.Started.IsZero() {
		opts.Started = called
	}
	if opts.Dir != "" {
		return nil, fmt.Errorf("%w: RestoreOptions.Dir (%s) is for Restore; RestoreFrom reads its snapshot from the stream", ErrInvalidConfig, opts.Dir)
	}
	d := &migrationDest{from: "the snapshot stream", opts: ReceiveOptions{
		DiskPaths: opts.DiskPaths, DiskFiles: opts.DiskFiles, TAPs: opts.TAPs, TAPFiles: opts.TAPFiles, Bridges: opts.Bridges, VsockSocket: opts.VsockSocket,
		TrustSourcePaths: opts.TrustSnapshotPaths, TrackDirtyPages: opts.TrackDirtyPages,
		Console: opts.Console, ConsoleInput: opts.ConsoleInput, KVMPath: opts.KVMPath, HostCacheDir: opts.HostCacheDir,
		Logger: opts.Logger, OnEvent: opts.OnEvent, Started: opts.Started, BeforeRun: opts.BeforeRun,
	}}
	err = migrate.ReadSnapshot(context.Background(), r, streamDest{d})
	if err != nil {
		if d.v != nil {
			d.v.Close()
		}
		if errors.Is(err, migrate.ErrProtocol) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: %w", ErrBadSnapshot, err)
		}
		return nil, err
	}
	d.v.log.WithField("took", time.Since(called).String()).Info("snapshot stream loaded")
	return d.v, nil
}

// streamDest builds the VM as an incoming migration does, but leaves the
// guest stopped at the end: the caller of RestoreFrom starts it.
type streamDest struct{ d *migrationDest }

func (s streamDest) Prepare(h migrate.Hello) ([][]byte, error) { return s.d.Prepare(h) }
func (s streamDest) Load(sections []snapshot.Section) error    { return s.d.Load(sections) }
func (s streamDest) Start() error                              { return nil }
