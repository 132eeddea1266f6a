package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// The faults a live migration must survive that only the network between
// two hosts causes: the connection cut in the middle of the stream, and a
// byte changed in transit that TCP's own checksum let through. "relay"
// stands between a migration's sender and its receiver: it accepts one
// TCP connection, dials the target, forwards both ways, and does one of
// these to the sender's stream at a chosen offset. It prints what it
// forwarded and what it did as key=value lines, so that a scenario knows
// the fault happened where it meant it to.

// relayFault is what a relay does to the sender's stream.
type relayFault struct {
	kind string // "" (forward unchanged), "cut" or "flip"
	at   int64  // cut after this many bytes; flip the byte at this offset
}

// relayReport is what a relay saw and did.
type relayReport struct {
	fault              relayFault
	toTarget, toSource int64 // bytes forwarded each way
	cut                bool  // the sender's stream was cut at fault.at
	flipped            bool  // the byte at fault.at was inverted
	flipFrom, flipTo   byte
}

// summary is the report as key=value lines.
func (r relayReport) summary() []string {
	l := []string{
		fmt.Sprintf("to-target=%d", r.toTarget),
		fmt.Sprintf("to-source=%d", r.toSource),
	}
	switch {
	case r.cut:
		l = append(l, fmt.Sprintf("cut-at=%d", r.fault.at))
	case r.flipped:
		l = append(l, fmt.Sprintf("flipped-at=%d", r.fault.at), fmt.Sprintf("flipped-byte=%02x>%02x", r.flipFrom, r.flipTo))
	case r.fault.kind != "":
		// The sender's stream ended before the offset: no fault.
		l = append(l, fmt.Sprintf("%s-missed=%d", r.fault.kind, r.fault.at))
	}
	return l
}

// relayCmd: relay LISTEN TARGET [--cut-after BYTES | --flip-after BYTES].
func relayCmd(args []string) error {
	var f relayFault
	switch {
	case len(args) == 4 && args[2] == "--cut-after":
		f.kind = "cut"
	case len(args) == 4 && args[2] == "--flip-after":
		f.kind = "flip"
	case len(args) != 2:
		return errors.New("want LISTEN TARGET [--cut-after BYTES | --flip-after BYTES] (both tcp HOST:PORT)")
	}
	if f.kind != "" {
		n, err := strconv.ParseInt(args[3], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("BYTES %q: want a non-negative number", args[3])
		}
		f.at = n
	}
	if _, err := exitAfterTimeout("relay", defaultTimeout); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return fmt.Errorf("listen on tcp %s: %w", args[0], err)
	}
	defer ln.Close()
	rep, err := relay(ln, args[1], f)
	for _, l := range rep.summary() {
		fmt.Println(l)
	}
	return err
}

// relay accepts one connection on ln, dials target and forwards between
// the two until both directions have ended, doing f to what the accepted
// side (the sender) sends. What the peers do (close, reset, abort) is
// theirs to report; relay fails only when it could not connect them.
func relay(ln net.Listener, target string, f relayFault) (relayReport, error) {
	rep := relayReport{fault: f}
	c, err := ln.Accept()
	if err != nil {
		return rep, fmt.Errorf("accept: %w", err)
	}
	src := c.(*net.TCPConn)
	defer src.Close()
	d, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return rep, fmt.Errorf("dial %s: %w", target, err)
	}
	dst := d.(*net.TCPConn)
	defer dst.Close()

	back := make(chan int64, 1)
	go func() {
		n, err := io.Copy(src, dst)
		if err == nil {
			// The receiver is done: so is what the sender reads.
			src.CloseWrite()
		}
		back <- n
	}()
	readErr, writeErr := forward(dst, src, f, &rep)
	switch {
	case rep.cut:
		// Both ends at once, as when a link goes down: the receiver
		// sees its stream end, the sender a reset.
		src.Close()
		dst.Close()
	case writeErr != nil:
		// The receiver went, maybe after telling the sender why (an
		// abort): take what the sender still writes, unread data would
		// make this end reset the connection and lose that reason.
		io.Copy(io.Discard, src)
	case readErr == io.EOF:
		dst.CloseWrite()
	default:
		// The sender's connection broke: so does the receiver's.
		dst.Close()
	}
	rep.toSource = <-back
	return rep, nil
}

// forward copies src to dst, doing f to the bytes, and counts in
// rep.toTarget. It returns at src's end (readErr io.EOF), at the first
// read or write error, or once a cut's bytes have gone (both nil).
func forward(dst io.Writer, src io.Reader, f relayFault, rep *relayReport) (readErr, writeErr error) {
	buf := make([]byte, 64<<10)
	for {
		if f.kind == "cut" && rep.toTarget >= f.at {
			rep.cut = true
			return nil, nil
		}
		n, err := src.Read(buf)
		chunk := buf[:n]
		if f.kind == "cut" && rep.toTarget+int64(n) > f.at {
			chunk = chunk[:f.at-rep.toTarget]
		}
		if i := f.at - rep.toTarget; f.kind == "flip" && !rep.flipped && i >= 0 && i < int64(len(chunk)) {
			rep.flipFrom = chunk[i]
			chunk[i] = ^chunk[i]
			rep.flipTo, rep.flipped = chunk[i], true
		}
		if len(chunk) > 0 {
			w, werr := dst.Write(chunk)
			rep.toTarget += int64(w)
			if werr != nil {
				return nil, werr
			}
		}
		if err != nil && !(f.kind == "cut" && rep.toTarget >= f.at) {
			return err, nil
		}
	}
}
