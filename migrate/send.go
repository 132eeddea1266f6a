package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/ternvm/tern/migrate/snapshot"
)

// Sender-side batching: about 4 MiB of page data per message keeps the
// per-message cost (a header, a checksum pass, one writev) small next to
// the data, and a message well under the receiver's 8 MiB bound.
const (
	batchData   = 4 << 20
	maxRunPages = 1 << 31 // page count of one run entry, well inside u32
)

// errForce: the timeout passed with ForceOnTimeout; pre-copy stops
// where it is and stop-and-copy begins.
var errForce = errors.New("forced to stop-and-copy")

// inMsg is one message from the destination, or the error that ended
// the reading of them.
type inMsg struct {
	h       header
	payload []byte
	err     error
}

// sender is one outgoing migration.
type sender struct {
	lastProgress time.Time // the last Progress call
	ctx          context.Context
	stopWatch    func() bool // disarms the ctx watch; false once it fired
	src          Source
	opts         SendOptions
	mw           msgWriter
	mr           msgReader
	dl           *deadlines
	mem          layout
	st           Status
	start        time.Time
	forceAt      time.Time // zero: no forcing
	pause        time.Time
	batch        pageBatch
	staging      []byte
	limit        int // page data per message
	pace         pacer

	// Streamed disks (SendOptions.WithDisks), nil when none.
	diskSrc  DiskSource
	diskInfo []DiskInfo
	diskBuf  []byte
	dbatch   diskBatch

	in           chan inMsg
	done         chan struct{} // closed when Send ends; the reader stops delivering
	readerExited chan struct{}
	readerUp     bool

	// What Send changed on src, to undo on failure.
	dirtyLog  bool
	diskLog   bool
	paused    bool
	throttled bool
	committed bool
	noAbort   bool // the destination needs no abort (it refused or aborted)
}

// Send migrates src over conn. On success the destination runs the guest
// and src stays paused for the caller to stop. Any failure before the
// source commits resumes src (unthrottled, dirty log stopped) before Send
// returns; a failure after it returns ErrOutcomeUnknown with src paused.
// Cancelling ctx cancels the migration (ErrCancelled); opts.Timeout
// cancels or forces it. When conn is a net.Conn its deadlines bound every
// wait for the peer and unblock I/O when ctx is cancelled.
//
// Send reads the destination's messages on a goroutine of its own, so
// that an abort stops pre-copy at once. On a conn without deadlines a
// cancel is seen between messages, and if Send fails while that goroutine
// is blocked in a read, the goroutine ends when the caller closes conn.
func Send(ctx context.Context, conn io.ReadWriter, src Source, opts SendOptions) (Status, error) {
	if opts.Downtime <= 0 {
		opts.Downtime = DefaultDowntime
	}
	s := &sender{
		src:          src,
		opts:         opts,
		mw:           msgWriter{w: conn},
		mr:           msgReader{r: conn},
		dl:           newDeadlines(conn),
		start:        time.Now(),
		in:           make(chan inMsg, 4),
		done:         make(chan struct{}),
		readerExited: make(chan struct{}),
		pace:         pacer{rate: opts.Bandwidth},
		limit:        batchData,
	}
	if opts.Bandwidth > 0 {
		// Messages of at most ~50 ms at the cap, so the pacing is even
		// and a cancel is seen soon.
		s.limit = int(min(uint64(batchData), max(pageSize, opts.Bandwidth/20/pageSize*pageSize)))
	}
	s.ctx = ctx
	if opts.Timeout > 0 {
		if opts.ForceOnTimeout {
			s.forceAt = s.start.Add(opts.Timeout)
		} else {
			var cancel context.CancelFunc
			s.ctx, cancel = context.WithTimeoutCause(ctx, opts.Timeout, fmt.Errorf("timed out after %v", opts.Timeout))
			defer cancel()
		}
	}
	s.stopWatch = context.AfterFunc(s.ctx, s.dl.interrupt)
	defer s.stopWatch()
	return s.finish(s.run())
}

func (s *sender) setPhase(p Phase) {
	s.st.Phase = p
	s.progress()
}

func (s *sender) progress() {
	s.lastProgress = time.Now()
	s.st.BytesTransferred = s.mw.bytes
	s.st.TotalTimeMS = ms(time.Since(s.start))
	if s.opts.Progress != nil {
		s.opts.Progress(s.st)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s *sender) run() error {
	mem, err := newLayout(s.src.Regions())
	if err != nil {
		s.noAbort = true
		return fmt.Errorf("the source's memory: %w", err)
	}
	s.mem = mem
	s.st.TotalBytes = mem.pages * pageSize
	s.setPhase(PhaseSetup)
	hello, err := s.src.Hello()
	if err != nil {
		s.noAbort = true
		return fmt.Errorf("describing the VM: %w", err)
	}
	hello.Disks = nil
	if s.opts.WithDisks {
		if err := s.describeDisks(&hello); err != nil {
			s.noAbort = true
			return err
		}
	}
	hp, err := json.Marshal(hello)
	if err != nil {
		s.noAbort = true
		return fmt.Errorf("encoding the hello: %w", err)
	}

	s.readerUp = true
	go s.readLoop()
	s.dl.write(writeTimeout)
	var flags uint32
	if s.diskSrc != nil {
		flags |= preambleDisks
	}
	if err := s.mw.preamble(flags); err != nil {
		return err
	}
	if _, err := s.mw.write(msgHello, hp); err != nil {
		return err
	}
	m, err := s.await(msgReply, acceptTimeout, true)
	if err != nil {
		return err
	}
	var reply reasonMsg
	if err := json.Unmarshal(m.payload, &reply); err != nil {
		return protoErr("%s: %v", m.h.label(), err)
	}
	if reply.Error != "" {
		s.noAbort = true
		return fmt.Errorf("%w: %s", ErrRefused, reply.Error)
	}

	var dext [][]Extent
	if s.diskSrc != nil {
		// Before the memory log: a disk is most of what a round sends.
		if dext, err = s.diskSrc.StartDiskLog(); err != nil {
			return fmt.Errorf("starting the disk write log: %w", err)
		}
		s.diskLog = true
		if err := s.checkExtents("the disks' data", dext); err != nil {
			return err
		}
	}
	bm, err := s.src.StartDirtyLog()
	if err != nil {
		return fmt.Errorf("starting the dirty log: %w", err)
	}
	s.dirtyLog = true
	if err := s.checkBitmap(bm); err != nil {
		return err
	}
	s.setPhase(PhasePreCopy)
	final, finalDisks, err := s.precopy(bm, dext)
	if err != nil {
		return err
	}
	return s.stopAndCopy(final, finalDisks)
}

// describeDisks puts the disks to stream into the hello.
func (s *sender) describeDisks(h *Hello) error {
	ds, ok := s.src.(DiskSource)
	if !ok {
		return errors.New("this source cannot stream its disks")
	}
	disks, err := ds.Disks()
	if err != nil {
		return fmt.Errorf("describing the disks: %w", err)
	}
	if len(disks) > maxDisks {
		return fmt.Errorf("%d disks to stream, the protocol carries at most %d", len(disks), maxDisks)
	}
	if len(disks) == 0 {
		return nil // nothing to stream: a plain migration
	}
	for _, d := range disks {
		if d.Size > math.MaxInt64 {
			return fmt.Errorf("disk %s of %d bytes", d.Name, d.Size)
		}
		s.st.DiskTotalBytes += d.Size
	}
	s.diskSrc, s.diskInfo, h.Disks = ds, disks, disks
	return nil
}

// takeDiskDirty takes the disks' write records, when disks are streamed.
func (s *sender) takeDiskDirty() ([][]Extent, error) {
	if s.diskSrc == nil {
		return nil, nil
	}
	d, err := s.diskSrc.TakeDiskDirty()
	if err != nil {
		return nil, fmt.Errorf("reading the disk write log: %w", err)
	}
	if err := s.checkExtents("the disk write log", d); err != nil {
		return nil, err
	}
	return mergeExtents(d, nil), nil
}

func (s *sender) checkBitmap(b snapshot.Bitmap) error {
	if want := (s.mem.pages + 63) / 64; uint64(len(b)) != want {
		return fmt.Errorf("the source's dirty bitmap has %d words for %d pages (want %d)", len(b), s.mem.pages, want)
	}
	return nil
}

// precopy sends rounds while the guest runs until what is left would
// go within the downtime target, and returns the pages and disk ranges
// still to send. A round sends the disks' ranges first, then the pages.
func (s *sender) precopy(bm snapshot.Bitmap, dext [][]Extent) (snapshot.Bitmap, [][]Extent, error) {
	var conv convergence
	for {
		s.st.Round++
		t0, w0 := time.Now(), s.mw.bytes
		if s.diskSrc != nil {
			if err := s.sendDisks(dext, false); err != nil {
				if errors.Is(err, errForce) {
					return bm, dext, nil // sent again whole, as pages below
				}
				return nil, nil, err
			}
		}
		if err := s.sendPages(bm, false); err != nil {
			if errors.Is(err, errForce) {
				// Pages of this round that went are sent again: simpler
				// than tracking them, and a forced migration is rare.
				// The disks' ranges went; what changed since is in their
				// record.
				return bm, nil, nil
			}
			return nil, nil, err
		}
		dirty, err := s.src.TakeDirty()
		if err != nil {
			return nil, nil, fmt.Errorf("reading the dirty log: %w", err)
		}
		if err := s.checkBitmap(dirty); err != nil {
			return nil, nil, err
		}
		ddirty, err := s.takeDiskDirty()
		if err != nil {
			return nil, nil, err
		}
		secs := time.Since(t0).Seconds()
		sent := s.mw.bytes - w0
		diskDirty := extentBytes(ddirty)
		dirtyBytes := dirty.Count()*pageSize + diskDirty
		if sent > 0 && secs > 0 {
			s.st.Bandwidth = uint64(float64(sent) / secs)
		}
		if secs > 0 {
			s.st.DirtyRate = uint64(float64(dirtyBytes) / secs)
		}
		s.st.RemainingBytes, s.st.DiskRemainingBytes = dirtyBytes, diskDirty
		converged := dirtyBytes == 0
		if s.st.Bandwidth > 0 {
			expected := time.Duration(float64(dirtyBytes) / float64(s.st.Bandwidth) * float64(time.Second))
			s.st.ExpectedDowntimeMS = ms(expected)
			converged = expected <= s.opts.Downtime
		}
		conv = conv.next(dirtyBytes, sent)
		if conv.throttle != s.st.ThrottlePercent {
			s.src.Throttle(conv.throttle)
			s.throttled = true
			s.st.ThrottlePercent = conv.throttle
		}
		s.progress()
		if converged || s.forceDue() {
			return dirty, ddirty, nil
		}
		bm, dext = dirty, ddirty
	}
}

func (s *sender) forceDue() bool {
	return !s.forceAt.IsZero() && !time.Now().Before(s.forceAt)
}

// convergence is auto-converge's state between rounds.
type convergence struct {
	hot      int // rounds in a row that dirtied more than half what they sent
	throttle int // percent
}

// next decides the throttle after a round that sent sent bytes while the
// guest dirtied dirty bytes. A guest that twice in a row dirties more than
// half of what a round moves is unlikely to converge on its own: throttle
// it to 20%, and 10 points more after each further such round, up to 99.
// A calmer round stops the escalation but keeps the throttle, since
// lifting it would bring the dirtying back.
func (c convergence) next(dirty, sent uint64) convergence {
	if dirty > sent/2 {
		c.hot++
	} else {
		c.hot = 0
	}
	if c.hot >= 2 {
		if c.throttle == 0 {
			c.throttle = 20
		} else {
			c.throttle = min(c.throttle+10, 99)
		}
	}
	return c
}

// stopAndCopy pauses the guest, sends the last disk ranges and pages and
// the state, and commits once the destination is ready.
func (s *sender) stopAndCopy(bm snapshot.Bitmap, dext [][]Extent) error {
	s.setPhase(PhaseStopAndCopy)
	if err := s.src.Pause(); err != nil {
		return fmt.Errorf("pausing the source: %w", err)
	}
	s.paused = true
	s.pause = time.Now()
	last, err := s.src.TakeDirty()
	if err != nil {
		return fmt.Errorf("reading the dirty log: %w", err)
	}
	if err := s.checkBitmap(last); err != nil {
		return err
	}
	_ = bm.Or(last) // same length: both checked
	if s.diskSrc != nil {
		// Paused, the devices are quiet: this record holds the last
		// change, and what is read now is what the guest left.
		ldisk, err := s.takeDiskDirty()
		if err != nil {
			return err
		}
		if err := s.sendDisks(mergeExtents(dext, ldisk), true); err != nil {
			return err
		}
	}
	if err := s.sendPages(bm, true); err != nil {
		return err
	}
	s.st.RemainingBytes, s.st.DiskRemainingBytes = 0, 0
	sections, err := s.src.State()
	if err != nil {
		return fmt.Errorf("saving the VM state: %w", err)
	}
	if n := snapshot.EncodedSize(sections); n > snapshot.MaxStateSize {
		return fmt.Errorf("the VM state is %d bytes, the protocol carries at most %d", n, snapshot.MaxStateSize)
	}
	var state bytesWriter
	if err := snapshot.WriteState(&state, sections); err != nil {
		return err
	}
	if err := s.check(true); err != nil {
		return err
	}
	s.dl.write(writeTimeout)
	if _, err := s.mw.write(msgState, state.b); err != nil {
		return err
	}
	if _, err := s.await(msgReady, readyTimeout, true); err != nil {
		return err
	}
	// From the commit on, nothing may resume the source: a cancel that
	// has not happened by now is too late.
	if !s.stopWatch() || s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	s.dl.write(writeTimeout)
	n, err := s.mw.write(msgCommit)
	if n > 0 {
		// Some of the commit may have reached the destination, which may
		// then start the guest: from here the outcome is only known
		// from its answer.
		s.committed = true
	}
	if err != nil {
		return err
	}
	m, err := s.await(msgRunning, runningTimeout, false)
	if err != nil {
		return err
	}
	s.st.DowntimeMS = ms(time.Since(s.pause))
	var running runningMsg
	_ = json.Unmarshal(m.payload, &running) // informational only: the message itself is the confirmation
	return nil
}

// bytesWriter collects the state stream for one message.
type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// sendPages sends the pages bm marks, in page order. While the guest
// runs (stable false), each page is first copied into a staging buffer
// and checked and checksummed there: the guest may write a page while it
// is being sent, and the bytes on the wire must be the bytes the checksum
// covers (the page is then dirty and goes again later). Once the guest is
// paused (stable true) pages go straight from guest memory.
func (s *sender) sendPages(bm snapshot.Bitmap, stable bool) error {
	if !stable && s.staging == nil {
		s.staging = make([]byte, s.limit)
	}
	s.batch.reset()
	for i := range s.mem.regions {
		end := s.mem.regionEnd(i)
		for p := s.mem.first[i]; ; {
			start, n := bm.NextRun(p, end)
			if n == 0 {
				break
			}
			if err := s.addRun(i, start, n, stable); err != nil {
				return err
			}
			p = start + n
		}
	}
	return s.flush(stable)
}

// addRun adds pages [start, start+n) of region i to the batch, split
// into runs of zero and non-zero pages, flushing full messages.
func (s *sender) addRun(i int, start, n uint64, stable bool) error {
	var (
		pFirst, pN uint64 // the pending run
		pZero      bool
		pData      []byte
	)
	emit := func() {
		if pN > 0 {
			s.batch.add(pFirst, pN, pZero, pData)
			pN, pData = 0, nil
		}
	}
	for p := start; p < start+n; p++ {
		// Room for this page's data and two more runs (the pending one
		// and a new one) before touching the staging buffer, so that a
		// flush never reuses it under a pending run.
		if s.batch.dataBytes+len(pData)+pageSize > s.limit || s.batch.runs+2 > maxRuns {
			emit()
			if err := s.flush(stable); err != nil {
				return err
			}
		}
		page := s.mem.span(i, p, 1)
		if !stable {
			off := s.batch.dataBytes + len(pData)
			slot := s.staging[off : off+pageSize : off+pageSize]
			copy(slot, page)
			page = slot
		}
		zero := snapshot.IsZeroPage(page)
		if pN > 0 && zero == pZero && pN < maxRunPages {
			pN++
			if !zero {
				pData = pData[:len(pData)+pageSize]
			}
			continue
		}
		emit()
		pFirst, pN, pZero = p, 1, zero
		if !zero {
			if stable {
				// Full capacity, so the run can grow over the next pages.
				pData = s.mem.regions[i][(p-s.mem.first[i])*pageSize:][:pageSize]
			} else {
				off := s.batch.dataBytes
				pData = s.staging[off : off+pageSize]
			}
		}
	}
	emit()
	return nil
}

// flush sends the batch as one pages message, if it holds any run.
func (s *sender) flush(stable bool) error {
	if s.batch.runs == 0 {
		return nil
	}
	if err := s.check(stable); err != nil {
		return err
	}
	if err := s.pace.wait(s.ctx, s.batch.dataBytes+len(s.batch.table)+headerSize+trailerSize); err != nil {
		return err
	}
	s.dl.write(writeTimeout)
	if _, err := s.mw.write(msgPages, s.batch.parts()...); err != nil {
		return err
	}
	s.st.PagesSent += s.batch.dataPages
	s.st.ZeroPagesSent += s.batch.zeroPages
	s.st.BytesTransferred = s.mw.bytes
	s.batch.reset()
	// A round over a slow link can take minutes: whoever watches sees
	// the bytes move within it too.
	if time.Since(s.lastProgress) >= progressEvery {
		s.progress()
	}
	return nil
}

// progressEvery is how often a long round reports its progress.
const progressEvery = 250 * time.Millisecond

// check stops the migration between messages: cancelled, forced (only
// while the guest runs), or a message from the destination (an abort).
func (s *sender) check(stable bool) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	select {
	case m := <-s.in:
		return s.unexpected(m, "while the source sends")
	default:
	}
	if !stable && s.forceDue() {
		return errForce
	}
	return nil
}

// readLoop reads the destination's messages for Send until the one that
// ends the conversation (running, abort, a refusal) or an error.
func (s *sender) readLoop() {
	defer close(s.readerExited)
	deliver := func(m inMsg) bool {
		select {
		case s.in <- m:
			return true
		case <-s.done:
			return false
		}
	}
	if _, err := readPreamble(s.mr.r, 0); err != nil {
		s.readFailed()
		deliver(inMsg{err: err})
		return
	}
	for {
		h, err := s.mr.next()
		var p []byte
		if err == nil {
			p, err = s.mr.payload(h)
		}
		if err != nil {
			s.readFailed()
			deliver(inMsg{err: err})
			return
		}
		if !deliver(inMsg{h: h, payload: p}) {
			return
		}
		switch h.typ {
		case msgAbort:
			s.readFailed() // the destination stopped reading
			return
		case msgRunning:
			return
		case msgReply:
			var r reasonMsg
			if json.Unmarshal(p, &r) != nil || r.Error != "" {
				return
			}
		}
	}
}

// readFailed unblocks a write the main goroutine may be stuck in: with
// the destination's side of the stream gone or corrupt the migration
// is over, and a peer that no longer reads would hold the write until
// its deadline.
func (s *sender) readFailed() {
	select {
	case <-s.done:
	default:
		s.dl.interrupt()
	}
}

// await waits for the destination's next message, which must be want
// (an abort is the destination giving up). cancellable: a cancel of
// ctx ends the wait.
func (s *sender) await(want msgType, limit time.Duration, cancellable bool) (inMsg, error) {
	s.dl.read(limit)
	defer s.dl.read(0)
	t := time.NewTimer(limit)
	defer t.Stop()
	var cancel <-chan struct{}
	if cancellable {
		cancel = s.ctx.Done()
	}
	select {
	case m := <-s.in:
		if m.err == nil && m.h.typ == want {
			return m, nil
		}
		return inMsg{}, s.unexpected(m, "waiting for "+want.String())
	case <-t.C:
		return inMsg{}, fmt.Errorf("no %s message from the destination within %v", want, limit)
	case <-cancel:
		return inMsg{}, s.ctx.Err()
	}
}

// unexpected turns a message Send did not wait for into its error.
func (s *sender) unexpected(m inMsg, when string) error {
	if m.err != nil {
		return fmt.Errorf("reading from the destination: %w", m.err)
	}
	if m.h.typ == msgAbort {
		s.noAbort = true
		var r reasonMsg
		if err := json.Unmarshal(m.payload, &r); err != nil {
			return protoErr("%s: %v", m.h.label(), err)
		}
		return fmt.Errorf("%w: the destination says: %s", ErrAborted, r.Error)
	}
	return protoErr("%s: unexpected %s", m.h.label(), when)
}

// finish undoes what a failed migration did to the source and fills in
// the status.
func (s *sender) finish(err error) (Status, error) {
	s.stopWatch() // no interrupt after the deadlines are reset below
	if err == nil {
		s.stopReader()
		if s.diskLog {
			// The guest runs at the destination; the record is no use.
			_ = s.diskSrc.StopDiskLog()
		}
		s.setPhase(PhaseCompleted)
		return s.st, nil
	}
	phase := PhaseFailed
	var undo []error
	if s.committed {
		// The guest may run at the destination: it must not run here
		// too. Only the throttle and the dirty log go, so that an
		// operator who resumes it gets the VM as it was.
		err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		undo = s.undo(false)
	} else {
		if errors.Is(err, errForce) {
			err = fmt.Errorf("forcing stop-and-copy: %w", err) // cannot happen: precopy consumes it
		}
		if s.mw.broken && !s.noAbort {
			err = s.abortReason(err)
		}
		if s.ctx.Err() != nil && !errors.Is(err, ErrAborted) {
			err = fmt.Errorf("%w: %w", ErrCancelled, context.Cause(s.ctx))
			phase = PhaseCancelled
		}
		if !s.noAbort && !s.mw.broken && s.mw.bytes > 0 {
			s.dl.resumeWrites(abortTimeout)
			p, _ := json.Marshal(reasonMsg{Error: err.Error()})
			_, _ = s.mw.write(msgAbort, p) // best effort: the peer may be gone
		}
		undo = s.undo(true)
	}
	err = errors.Join(append([]error{err}, undo...)...)
	s.st.Error = err.Error()
	s.stopReader()
	s.setPhase(phase)
	return s.st, err
}

// abortReason returns, for a write that failed, the destination's abort
// if it sent one (a destination that gives up sends its reason and
// closes, and the reason says more than the broken pipe), or what went
// wrong reading from it.
func (s *sender) abortReason(err error) error {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case m := <-s.in:
		// The reader's error is the cause when it stopped the write.
		if m.err != nil || m.h.typ == msgAbort {
			return s.unexpected(m, "")
		}
	case <-t.C:
	}
	return err
}

// undo reverts the throttle and the dirty log, and resumes the guest if
// Send paused it and resume is allowed.
func (s *sender) undo(resume bool) []error {
	var errs []error
	if s.throttled {
		s.src.Throttle(0)
		s.st.ThrottlePercent = 0
	}
	if s.dirtyLog {
		if err := s.src.StopDirtyLog(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the dirty log: %w", err))
		}
	}
	if s.diskLog {
		if err := s.diskSrc.StopDiskLog(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the disk write log: %w", err))
		}
	}
	if resume && s.paused {
		if err := s.src.Resume(); err != nil {
			errs = append(errs, fmt.Errorf("resuming the source: %w", err))
		}
	}
	return errs
}

// stopReader ends the reading goroutine: at once on a conn with
// deadlines; otherwise it ends when its read fails.
func (s *sender) stopReader() {
	close(s.done)
	if !s.readerUp {
		return
	}
	select {
	case <-s.readerExited:
	default:
		if s.dl.conn == nil {
			return
		}
		s.dl.interrupt()
		<-s.readerExited
	}
	s.dl.reset()
}

// pacer keeps the send rate at most rate bytes per second.
type pacer struct {
	rate uint64
	next time.Time
}

// wait sleeps until n more bytes may go out.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate == 0 {
		return nil
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now // no credit for idle time: no bursts
	}
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.next = p.next.Add(time.Duration(float64(n) / float64(p.rate) * float64(time.Second)))
	return nil
}
