package migrate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ternvm/tern/migrate/snapshot"
)

// receiver is one incoming migration.
type receiver struct {
	mr  msgReader
	mw  msgWriter
	dl  *deadlines
	dst Destination
	mem layout
	// written marks the pages this migration wrote, so that a zero run
	// clears only those and memory it never touched stays untouched.
	written snapshot.Bitmap
	table   []byte
	runs    []run

	// Streamed disks: the source's preamble flag, the disks its hello
	// announced, and the destination that takes them.
	streaming bool
	disks     []DiskInfo
	diskDst   DiskDestination
	diskBuf   []byte
}

// Receive takes one incoming migration from conn into dst. It returns a
// nil error exactly when dst runs the guest; any error means the guest
// was not started here and dst should be discarded. The error says why,
// and the source is told (an abort message) where the stream still works.
//
// Receive reads the source's messages in order (PROTOCOL.md): hello,
// then any number of pages messages, the state, the commit. Any other
// order, and any framing, checksum or bounds violation, fails with
// ErrProtocol; an abort from the source with ErrAborted; the stream
// ending before the commit with io.ErrUnexpectedEOF. When conn is a
// net.Conn, the source must send something every 60 s, and cancelling
// ctx unblocks I/O (ErrCancelled); on another conn, a cancel is seen
// between messages only.
func Receive(ctx context.Context, conn io.ReadWriter, dst Destination) (ReceiveResult, error) {
	r := &receiver{
		mr:  msgReader{r: conn, fromSr: true},
		mw:  msgWriter{w: conn},
		dl:  newDeadlines(conn),
		dst: dst,
	}
	defer r.dl.reset() // after stop: no interrupt can follow it
	stop := context.AfterFunc(ctx, r.dl.interrupt)
	defer stop()
	res, tell, err := r.run(ctx)
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil && !res.Started {
		err = fmt.Errorf("%w: %w (%w)", ErrCancelled, context.Cause(ctx), err)
	}
	if tell && !r.mw.broken {
		r.dl.resumeWrites(abortTimeout)
		p, _ := json.Marshal(reasonMsg{Error: err.Error()})
		_, _ = r.mw.write(msgAbort, p) // best effort: the error that matters is err
	}
	return res, err
}

// run returns the outcome, and whether the source should be sent an
// abort (not when it aborted itself or already got a refusal).
func (r *receiver) run(ctx context.Context) (ReceiveResult, bool, error) {
	r.dl.write(writeTimeout)
	if err := r.mw.preamble(0); err != nil {
		return ReceiveResult{}, false, err
	}
	r.dl.read(idleTimeout)
	flags, err := readPreamble(r.mr.r, preambleDisks)
	if err != nil {
		return ReceiveResult{}, false, err
	}
	r.streaming = flags&preambleDisks != 0
	if refused, err := r.handshake(); err != nil {
		return ReceiveResult{}, !refused, err
	}
	loaded := false
	for {
		if err := ctx.Err(); err != nil {
			return ReceiveResult{}, true, err
		}
		r.dl.read(idleTimeout)
		h, err := r.mr.next()
		if err != nil {
			return ReceiveResult{}, true, err
		}
		switch h.typ {
		case msgPages:
			if loaded {
				return ReceiveResult{}, true, protoErr("%s: pages after the state", h.label())
			}
			if err := r.pages(h); err != nil {
				return ReceiveResult{}, true, err
			}
		case msgDiskExtents:
			switch {
			case !r.streaming:
				return ReceiveResult{}, true, protoErr("%s: disk extents, but the source announced no streamed disks", h.label())
			case loaded:
				return ReceiveResult{}, true, protoErr("%s: disk extents after the state", h.label())
			}
			if err := r.diskExtents(h); err != nil {
				return ReceiveResult{}, true, err
			}
		case msgState:
			if loaded {
				return ReceiveResult{}, true, protoErr("%s: a second state", h.label())
			}
			if err := r.state(h); err != nil {
				return ReceiveResult{}, true, err
			}
			loaded = true
			r.dl.write(writeTimeout)
			if _, err := r.mw.write(msgReady); err != nil {
				return ReceiveResult{}, false, err
			}
		case msgCommit:
			if !loaded {
				return ReceiveResult{}, true, protoErr("%s: commit before the state", h.label())
			}
			if _, err := r.mr.payload(h); err != nil {
				return ReceiveResult{}, true, err
			}
			return r.start()
		case msgAbort:
			p, err := r.mr.payload(h)
			if err != nil {
				return ReceiveResult{}, true, err
			}
			var m reasonMsg
			if err := json.Unmarshal(p, &m); err != nil {
				return ReceiveResult{}, true, protoErr("%s: %v", h.label(), err)
			}
			return ReceiveResult{}, false, fmt.Errorf("%w: the source says: %s", ErrAborted, m.Error)
		default: // hello: the reader lets through only what a source sends
			return ReceiveResult{}, true, protoErr("%s: unexpected after the handshake", h.label())
		}
	}
}

// handshake reads and checks the hello, has dst prepare, and answers.
// refused says the source was sent a refusal (so no abort is due).
func (r *receiver) handshake() (refused bool, err error) {
	r.dl.read(idleTimeout)
	h, err := r.mr.next()
	if err != nil {
		return false, err
	}
	if h.typ != msgHello {
		return false, protoErr("%s: the stream must open with a hello", h.label())
	}
	p, err := r.mr.payload(h)
	if err != nil {
		return false, err
	}
	regions, err := r.prepare(h, p)
	if err == nil {
		r.mem, err = r.checkRegions(regions)
	}
	reply := reasonMsg{}
	if err != nil {
		reply.Error = err.Error()
	}
	rp, _ := json.Marshal(reply)
	r.dl.write(writeTimeout)
	if _, werr := r.mw.write(msgReply, rp); werr != nil && err == nil {
		return false, werr
	}
	if err != nil {
		return true, err
	}
	r.written = snapshot.NewBitmap(r.mem.pages * pageSize)
	return false, nil
}

func (r *receiver) prepare(h header, p []byte) ([][]byte, error) {
	var hello Hello
	if err := json.Unmarshal(p, &hello); err != nil {
		return nil, protoErr("%s: %v", h.label(), err)
	}
	info := snapshot.MemoryInfo{Kind: snapshot.MemoryFull, PageSize: pageSize, Regions: hello.Regions}
	if err := info.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrProtocol, h.label(), err)
	}
	if c := bytes.TrimSpace(hello.Config); len(c) == 0 || bytes.Equal(c, []byte("null")) {
		return nil, protoErr("%s: no VM configuration", h.label())
	}
	if r.streaming != (len(hello.Disks) > 0) {
		return nil, protoErr("%s: %d streamed disks, but the preamble's disk flag is %v", h.label(), len(hello.Disks), r.streaming)
	}
	if err := checkDisks(h, hello.Disks); err != nil {
		return nil, err
	}
	if r.streaming {
		dd, ok := r.dst.(DiskDestination)
		if !ok {
			return nil, errors.New("this destination cannot receive streamed disks")
		}
		r.diskDst, r.disks = dd, hello.Disks
		if err := r.diskDst.PrepareDisks(hello.Disks); err != nil {
			return nil, err
		}
	}
	regions, err := r.dst.Prepare(hello)
	if err != nil {
		return nil, err
	}
	if len(regions) != len(hello.Regions) {
		return nil, fmt.Errorf("the destination mapped %d RAM regions for the source's %d", len(regions), len(hello.Regions))
	}
	for i, reg := range regions {
		if uint64(len(reg)) != hello.Regions[i].Size {
			return nil, fmt.Errorf("the destination mapped RAM region %d as %d bytes, the source's is %d", i, len(reg), hello.Regions[i].Size)
		}
	}
	return regions, nil
}

func (r *receiver) checkRegions(regions [][]byte) (layout, error) {
	l, err := newLayout(regions)
	if err != nil {
		return layout{}, fmt.Errorf("the destination's memory: %w", err)
	}
	return l, nil
}

// pages lands one pages message in guest memory: the run table is read
// and checked whole first, then each data run is read straight into its
// place. The checksum is checked last; a mismatch fails the migration,
// and a failed migration's memory is discarded, so landing bad bytes
// before knowing is harmless.
func (r *receiver) pages(h header) error {
	pr := payloadReader{r: r.mr.r, h: h, left: h.length}
	if h.length < pagesHeaderSize {
		return protoErr("%s: %d bytes, shorter than the %d-byte run count", h.label(), h.length, pagesHeaderSize)
	}
	var ph [pagesHeaderSize]byte
	if err := pr.readFull(ph[:]); err != nil {
		return err
	}
	count := binary.LittleEndian.Uint32(ph[:])
	if v := binary.LittleEndian.Uint32(ph[4:]); v != 0 {
		return protoErr("%s: reserved field %#x", h.label(), v)
	}
	if count > maxRuns {
		return protoErr("%s: %d runs, at most %d", h.label(), count, maxRuns)
	}
	if need := uint64(count) * runEntrySize; need > uint64(pr.left) {
		return protoErr("%s: %d runs need %d bytes of table, %d left in the payload", h.label(), count, need, pr.left)
	}
	if cap(r.table) < maxRuns*runEntrySize {
		r.table = make([]byte, maxRuns*runEntrySize)
	}
	table := r.table[:count*runEntrySize]
	if err := pr.readFull(table); err != nil {
		return err
	}
	runs, err := parseRuns(r.mem, h, count, table, r.runs)
	if err != nil {
		return err
	}
	r.runs = runs
	for _, rn := range runs {
		if rn.zero {
			r.clear(rn)
			continue
		}
		dst := r.mem.span(rn.region, rn.first, rn.n)
		if !r.written.Test(rn.first) {
			populate(dst)
		}
		if err := pr.readFull(dst); err != nil {
			return err
		}
		for p := rn.first; p < rn.first+rn.n; p++ {
			r.written.Set(p)
		}
	}
	return r.mr.trailer(h, pr.sum)
}

// clear zeroes the pages of a zero run this migration wrote before.
func (r *receiver) clear(rn run) {
	for p := rn.first; p < rn.first+rn.n; p++ {
		if w := r.written[p/64]; w == 0 {
			p |= 63 // skip the rest of a clear word
			continue
		} else if w&(1<<(p%64)) == 0 {
			continue
		}
		clear(r.mem.span(rn.region, p, 1))
		r.written[p/64] &^= 1 << (p % 64)
	}
}

func (r *receiver) state(h header) error {
	p, err := r.mr.payload(h)
	if err != nil {
		return err
	}
	sections, err := snapshot.ReadState(bytes.NewReader(p), int64(max(len(p), 1)))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrProtocol, h.label(), err)
	}
	if r.streaming {
		// Every disk range came before the state; Load opens the copies.
		if err := r.diskDst.FinishDisks(); err != nil {
			return fmt.Errorf("finishing the streamed disks: %w", err)
		}
	}
	if err := r.dst.Load(sections); err != nil {
		return fmt.Errorf("loading the VM state: %w", err)
	}
	return nil
}

// start runs the guest once the source committed, and confirms it.
func (r *receiver) start() (ReceiveResult, bool, error) {
	if err := r.dst.Start(); err != nil {
		// The abort tells the source why; it still reports the outcome
		// as unknown and keeps the guest paused (PROTOCOL.md).
		return ReceiveResult{}, true, fmt.Errorf("starting the guest: %w", err)
	}
	p, _ := json.Marshal(runningMsg{Time: time.Now().UTC().Format(time.RFC3339Nano)})
	r.dl.write(writeTimeout)
	_, err := r.mw.write(msgRunning, p)
	return ReceiveResult{Started: true, ConfirmErr: err}, false, nil
}
