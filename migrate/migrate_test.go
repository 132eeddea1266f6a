package migrate

import (
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// busyGuest writes pages in the first rounds, turning some to zero and
// some zero ones to data, then goes quiet.
func busyGuest(f *fakeSource, take int) {
	if take > 3 {
		return
	}
	for p := uint64(take); p < f.l.pages; p += 17 {
		if p%3 == 0 {
			f.write(p, 0) // a page that becomes zero must be cleared there
		} else {
			f.write(p, byte(take*31+int(p)))
		}
	}
}

func TestMigrate(t *testing.T) {
	for name, pair := range map[string]func(testing.TB) (net.Conn, net.Conn){"pipe": pipePair, "unix": unixPair} {
		t.Run(name, func(t *testing.T) {
			src := newFakeSource(40, 1, 1100, 3)
			src.guest = busyGuest
			dst := &fakeDest{}
			sc, dc := pair(t)
			rec := &recorder{Conn: sc}
			var phases []Phase
			o := migrate(t, context.Background(), rec, dc, src, dst, SendOptions{Downtime: time.Nanosecond, Progress: func(s Status) {
				if len(phases) == 0 || phases[len(phases)-1] != s.Phase {
					phases = append(phases, s.Phase)
				}
			}})
			if o.err != nil || o.recvEr != nil {
				t.Fatalf("Send: %v; Receive: %v", o.err, o.recvEr)
			}
			if !o.res.Started || o.res.ConfirmErr != nil || !dst.started {
				t.Fatalf("result %+v, started %v", o.res, dst.started)
			}
			sameMemory(t, src, dst)
			if !reflect.DeepEqual(dst.sections, src.sections) {
				t.Errorf("sections %q, want %q", dst.sections, src.sections)
			}
			if string(dst.hello.Config) != `{"vm":"fake"}` || len(dst.hello.Regions) != 4 {
				t.Errorf("hello %+v", dst.hello)
			}
			if !src.paused || src.resumes != 0 || src.pauses != 1 {
				t.Errorf("source paused %v, %d pauses, %d resumes: want paused once, never resumed", src.paused, src.pauses, src.resumes)
			}
			st := o.st
			if st.Phase != PhaseCompleted || st.Error != "" {
				t.Errorf("status %+v", st)
			}
			if want := []Phase{PhaseSetup, PhasePreCopy, PhaseStopAndCopy, PhaseCompleted}; !reflect.DeepEqual(phases, want) {
				t.Errorf("phases %v, want %v", phases, want)
			}
			if st.BytesTransferred != uint64(len(rec.bytes())) {
				t.Errorf("BytesTransferred %d, %d bytes went out", st.BytesTransferred, len(rec.bytes()))
			}
			if st.TotalBytes != 1144*pageSize || st.Round < 4 || st.PagesSent < 800 || st.ZeroPagesSent < 200 {
				t.Errorf("status %+v", st)
			}
			if st.DowntimeMS <= 0 || st.TotalTimeMS < st.DowntimeMS {
				t.Errorf("downtime %v ms, total %v ms", st.DowntimeMS, st.TotalTimeMS)
			}
		})
	}
}

// A zero run clears only pages this migration wrote; memory it never
// wrote keeps whatever the destination had there.
func TestZeroRunsClearOnlyWrittenPages(t *testing.T) {
	src := newFakeSource(64)
	src.guest = func(f *fakeSource, take int) {
		if take == 1 {
			f.write(7, 0) // sent with data in round 1, zero in round 2
		}
	}
	dst := &fakeDest{fillByte: 0xee}
	sc, dc := pipePair(t)
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{Downtime: time.Nanosecond})
	if o.err != nil || o.recvEr != nil {
		t.Fatalf("Send: %v; Receive: %v", o.err, o.recvEr)
	}
	for p := uint64(0); p < 64; p++ {
		got := dst.mem[0][p*pageSize : (p+1)*pageSize]
		want := src.page(p)
		if p%5 == 0 && p != 7 || p == 63 {
			// Never written with data here: untouched.
			if !isUniform(got, 0xee) {
				t.Errorf("page %d was touched (%#x...)", p, got[:4])
			}
			continue
		}
		if string(got) != string(want) {
			t.Errorf("page %d differs", p)
		}
	}
}

func isUniform(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

func TestConvergenceNext(t *testing.T) {
	type step struct {
		dirty, sent uint64
		want        int
	}
	steps := []step{
		{60, 100, 0},  // hot 1
		{40, 100, 0},  // calm: reset
		{51, 100, 0},  // hot 1
		{51, 100, 20}, // hot 2: throttle
		{90, 100, 30},
		{100, 100, 40},
		{10, 100, 40}, // calm: kept, not raised
		{60, 100, 40}, // hot 1
		{60, 100, 50},
		{50, 100, 50}, // exactly half is not more than half
	}
	var c convergence
	for i, s := range steps {
		c = c.next(s.dirty, s.sent)
		if c.throttle != s.want {
			t.Fatalf("step %d (dirty %d, sent %d): throttle %d, want %d", i, s.dirty, s.sent, c.throttle, s.want)
		}
	}
	c = convergence{hot: 5, throttle: 95}
	if c = c.next(1, 0); c.throttle != 99 {
		t.Errorf("throttle %d, want the 99 cap", c.throttle)
	}
	if c = c.next(1, 0); c.throttle != 99 {
		t.Errorf("throttle %d, want the 99 cap", c.throttle)
	}
}

// A guest that dirties as fast as it is copied gets throttled harder each
// round until it calms down (here: at 50%).
func TestThrottleEscalation(t *testing.T) {
	src := newFakeSource(256)
	src.guest = func(f *fakeSource, take int) {
		n := 200 * (100 - f.throttle) / 100
		if f.throttle >= 50 {
			n = 0
		}
		for p := 0; p < n; p++ {
			f.write(uint64(p), byte(take))
		}
	}
	dst := &fakeDest{}
	sc, dc := pipePair(t)
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{Downtime: time.Nanosecond})
	if o.err != nil || o.recvEr != nil {
		t.Fatalf("Send: %v; Receive: %v", o.err, o.recvEr)
	}
	if want := []int{20, 30, 40, 50}; !reflect.DeepEqual(src.throttles, want) {
		t.Errorf("throttles %v, want %v", src.throttles, want)
	}
	if o.st.ThrottlePercent != 50 {
		t.Errorf("ThrottlePercent %d", o.st.ThrottlePercent)
	}
	sameMemory(t, src, dst)
}

func TestRefused(t *testing.T) {
	src := newFakeSource(16)
	dst := &fakeDest{prepareErr: errors.New("no KVM here")}
	sc, dc := pipePair(t)
	rec := &recorder{Conn: sc}
	o := migrate(t, context.Background(), rec, dc, src, dst, SendOptions{})
	if !errors.Is(o.err, ErrRefused) || !strings.Contains(o.err.Error(), "no KVM here") {
		t.Errorf("Send: %v, want ErrRefused with the reason", o.err)
	}
	if o.recvEr == nil || !strings.Contains(o.recvEr.Error(), "no KVM here") || o.res.Started {
		t.Errorf("Receive: %+v, %v", o.res, o.recvEr)
	}
	if o.st.Phase != PhaseFailed || o.st.Error == "" {
		t.Errorf("status %+v", o.st)
	}
	if src.startDirtyCalls != 0 || src.pauses != 0 || src.paused {
		t.Errorf("source touched: %d dirty logs, %d pauses", src.startDirtyCalls, src.pauses)
	}
	types := messageTypes(t, rec.bytes())
	if !reflect.DeepEqual(types, []msgType{msgHello}) {
		t.Errorf("source sent %v, want only the hello", types)
	}
}

// messageTypes parses a recorded stream (preamble first).
func messageTypes(t testing.TB, stream []byte) []msgType {
	t.Helper()
	r := &msgReader{r: strings.NewReader(string(stream)), fromSr: true}
	if _, err := readPreamble(r.r, preambleDisks); err != nil {
		t.Fatal(err)
	}
	var types []msgType
	for {
		h, err := r.next()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return types
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.payload(h); err != nil {
			t.Fatal(err)
		}
		types = append(types, h.typ)
	}
}

// checkResumed asserts the source runs on as before the migration.
func checkResumed(t testing.TB, src *fakeSource) {
	t.Helper()
	if src.paused || src.pauses != src.resumes {
		t.Errorf("source paused %v after %d pauses and %d resumes", src.paused, src.pauses, src.resumes)
	}
	if src.dirtyLog {
		t.Error("dirty log still on")
	}
	if src.throttle != 0 {
		t.Errorf("throttle %d left on", src.throttle)
	}
}

// killConn fails every read after n bytes, closing the connection: the
// destination process dying.
type killConn struct {
	net.Conn
	n int
}

func (k *killConn) Read(p []byte) (int, error) {
	if k.n <= 0 {
		k.Conn.Close()
		return 0, io.ErrClosedPipe
	}
	p = p[:min(len(p), k.n)]
	n, err := k.Conn.Read(p)
	k.n -= n
	return n, err
}

func TestDestinationKilled(t *testing.T) {
	for _, at := range []int{100, 1 << 20, 3 << 20} {
		src := newFakeSource(1024)
		src.guest = busyGuest
		dst := &fakeDest{}
		sc, dc := unixPair(t)
		o := migrate(t, context.Background(), sc, &killConn{Conn: dc, n: at}, src, dst, SendOptions{})
		if o.err == nil || errors.Is(o.err, ErrOutcomeUnknown) {
			t.Errorf("killed after %d bytes: Send: %v", at, o.err)
		}
		if o.res.Started || dst.started {
			t.Error("started")
		}
		if o.st.Phase != PhaseFailed {
			t.Errorf("phase %v", o.st.Phase)
		}
		checkResumed(t, src)
	}
}

// The destination failing to load the state fails the migration after
// the source paused: the source runs on.
func TestLoadFails(t *testing.T) {
	src := newFakeSource(64)
	dst := &fakeDest{loadErr: errors.New("unknown device virtio-gpu")}
	sc, dc := pipePair(t)
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{})
	if !errors.Is(o.err, ErrAborted) || !strings.Contains(o.err.Error(), "virtio-gpu") {
		t.Errorf("Send: %v", o.err)
	}
	if o.recvEr == nil || o.res.Started {
		t.Errorf("Receive: %+v %v", o.res, o.recvEr)
	}
	if src.pauses != 1 {
		t.Errorf("%d pauses", src.pauses)
	}
	checkResumed(t, src)
}

// flipRelay copies a to b flipping the byte at offset at, and b to a.
func flipRelay(t testing.TB, a, b net.Conn, at int) {
	go func() {
		buf := make([]byte, 64<<10)
		off := 0
		for {
			n, err := a.Read(buf)
			if at >= off && at < off+n {
				buf[at-off] ^= 0x40
			}
			off += n
			if n > 0 {
				if _, werr := b.Write(buf[:n]); werr != nil {
					a.Close()
					return
				}
			}
			if err != nil {
				b.Close()
				return
			}
		}
	}()
	go func() {
		io.Copy(a, b)
		a.Close()
	}()
}

func TestCorruptionInTransit(t *testing.T) {
	src := newFakeSource(512)
	dst := &fakeDest{}
	sc, r1 := pipePair(t)
	r2, dc := pipePair(t)
	flipRelay(t, r1, r2, 200<<10) // inside page data of the first pages message
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{})
	if !errors.Is(o.recvEr, ErrProtocol) || !strings.Contains(o.recvEr.Error(), "(pages): payload checksum mismatch") {
		t.Errorf("Receive: %v", o.recvEr)
	}
	if o.res.Started || dst.started || dst.loaded {
		t.Error("destination went on")
	}
	if o.err == nil || !strings.Contains(o.err.Error(), "checksum") {
		t.Errorf("Send: %v, want the destination's checksum complaint", o.err)
	}
	checkResumed(t, src)
}

// The destination starts the guest but the connection dies before the
// source hears it: the source must not resume.
func TestConnectionDiesAfterCommit(t *testing.T) {
	src := newFakeSource(64)
	dst := &fakeDest{}
	sc, dc := pipePair(t)
	dst.onStart = func() { dc.Close() }
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{})
	if !errors.Is(o.err, ErrOutcomeUnknown) {
		t.Fatalf("Send: %v, want ErrOutcomeUnknown", o.err)
	}
	if !o.res.Started || o.res.ConfirmErr == nil || o.recvEr != nil {
		t.Errorf("Receive: %+v, %v", o.res, o.recvEr)
	}
	if !src.paused || src.resumes != 0 {
		t.Errorf("source paused %v, %d resumes: it must stay paused", src.paused, src.resumes)
	}
	if o.st.Phase != PhaseFailed {
		t.Errorf("phase %v", o.st.Phase)
	}
}

// The destination's Start fails after the commit: it says so, and the
// source still keeps the guest paused (it cannot know more than the
// destination tells it).
func TestStartFails(t *testing.T) {
	src := newFakeSource(8)
	dst := &fakeDest{startErr: errors.New("vCPU 0: KVM_RUN: EFAULT")}
	sc, dc := pipePair(t)
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{})
	if !errors.Is(o.err, ErrOutcomeUnknown) || !strings.Contains(o.err.Error(), "EFAULT") {
		t.Errorf("Send: %v", o.err)
	}
	if o.res.Started || o.recvEr == nil {
		t.Errorf("Receive: %+v, %v", o.res, o.recvEr)
	}
	if !src.paused || src.resumes != 0 {
		t.Error("source resumed")
	}
}

// cancelConn cancels a context once n bytes were written through it.
type cancelConn struct {
	net.Conn
	n      int
	cancel context.CancelFunc
}

func (c *cancelConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestCancelMidTransfer(t *testing.T) {
	for name, pair := range map[string]func(testing.TB) (net.Conn, net.Conn){"pipe": pipePair, "unix": unixPair} {
		t.Run(name, func(t *testing.T) {
			src := newFakeSource(2048)
			src.guest = busyGuest
			dst := &fakeDest{}
			sc, dc := pair(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := migrate(t, ctx, &cancelConn{Conn: sc, n: 2 << 20, cancel: cancel}, dc, src, dst, SendOptions{})
			if !errors.Is(o.err, ErrCancelled) || !errors.Is(o.err, context.Canceled) {
				t.Errorf("Send: %v", o.err)
			}
			if o.st.Phase != PhaseCancelled {
				t.Errorf("phase %v", o.st.Phase)
			}
			if o.res.Started || o.recvEr == nil {
				t.Errorf("Receive: %+v, %v", o.res, o.recvEr)
			}
			checkResumed(t, src)
		})
	}
}

// restlessGuest never lets the migration converge by itself.
func restlessGuest(f *fakeSource, take int) {
	for p := uint64(0); p < 32; p++ {
		f.write(p, byte(take+int(p)))
	}
	time.Sleep(time.Millisecond)
}

func TestTimeout(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		src := newFakeSource(128)
		src.guest = restlessGuest
		dst := &fakeDest{}
		sc, dc := pipePair(t)
		o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{Downtime: time.Nanosecond, Timeout: 100 * time.Millisecond})
		if !errors.Is(o.err, ErrCancelled) || !strings.Contains(o.err.Error(), "timed out after 100ms") {
			t.Errorf("Send: %v", o.err)
		}
		if o.st.Phase != PhaseCancelled || o.res.Started {
			t.Errorf("phase %v, started %v", o.st.Phase, o.res.Started)
		}
		// The cancel interrupts a write, possibly within a message: then
		// the destination sees the stream end instead of an abort.
		if !errors.Is(o.recvEr, ErrAborted) && !errors.Is(o.recvEr, io.ErrUnexpectedEOF) {
			t.Errorf("Receive: %v, want the source's abort or a cut stream", o.recvEr)
		}
		checkResumed(t, src)
	})
	t.Run("force", func(t *testing.T) {
		src := newFakeSource(128)
		src.guest = restlessGuest
		dst := &fakeDest{}
		sc, dc := pipePair(t)
		o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{Downtime: time.Nanosecond, Timeout: 100 * time.Millisecond, ForceOnTimeout: true})
		if o.err != nil || o.recvEr != nil {
			t.Fatalf("Send: %v; Receive: %v", o.err, o.recvEr)
		}
		if o.st.Phase != PhaseCompleted || o.st.TotalTimeMS < 100 {
			t.Errorf("status %+v", o.st)
		}
		sameMemory(t, src, dst)
		if !src.paused || src.throttle == 0 {
			t.Errorf("paused %v, throttle %d: a restless guest should have been throttled", src.paused, src.throttle)
		}
	})
}

func TestBandwidthCap(t *testing.T) {
	src := newFakeSource(256) // about 820 KiB of data
	dst := &fakeDest{}
	sc, dc := unixPair(t)
	start := time.Now()
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{Bandwidth: 4 << 20})
	if o.err != nil {
		t.Fatal(o.err)
	}
	// The first message goes at once; the rest at 4 MiB/s.
	if min := time.Duration(float64(o.st.BytesTransferred-(200<<10)) / float64(4<<20) * float64(time.Second)); time.Since(start) < min {
		t.Errorf("%d bytes in %v, faster than the cap allows (%v)", o.st.BytesTransferred, time.Since(start), min)
	}
	sameMemory(t, src, dst)
}

func TestNotATernPeer(t *testing.T) {
	sc, dc := pipePair(t)
	go io.Copy(io.Discard, dc)
	go io.WriteString(dc, "SSH-2.0-OpenSSH_9.6\r\n")
	src := newFakeSource(4)
	st, err := Send(context.Background(), sc, src, SendOptions{})
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "not a tern migration endpoint") {
		t.Errorf("Send: %v", err)
	}
	if st.Phase != PhaseFailed {
		t.Errorf("phase %v", st.Phase)
	}
}

// A round over a slow link reports its bytes as they go, not only when it
// ends: a watcher sees a minute-long first round move.
func TestProgressWithinALongRound(t *testing.T) {
	src := newFakeSource(256) // 1 MiB of non-zero pages
	dst := &fakeDest{}
	sc, dc := pipePair(t)
	var mu sync.Mutex
	var inRound1 []uint64
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{
		Bandwidth: 1 << 20, // about a second for round 1
		Progress: func(s Status) {
			mu.Lock()
			defer mu.Unlock()
			if s.Phase == PhasePreCopy && s.Round == 1 && s.RemainingBytes == 0 {
				inRound1 = append(inRound1, s.BytesTransferred)
			}
		},
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(inRound1) < 2 {
		t.Fatalf("round 1 reported %d times while under way (%v); want several", len(inRound1), inRound1)
	}
	for i := 1; i < len(inRound1); i++ {
		if inRound1[i] <= inRound1[i-1] {
			t.Errorf("bytes went %d then %d within round 1", inRound1[i-1], inRound1[i])
		}
	}
}
