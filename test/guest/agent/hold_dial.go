package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// holdDialCmd: hold-dial NETWORK ADDRESS.
func holdDialCmd(args []string) error {
	if len(args) != 2 {
		return errors.New("want NETWORK ADDRESS (tcp HOST:PORT, unix PATH, vsock CID:PORT)")
	}
	deadline, err := exitAfterTimeout("hold-dial", holdTimeout)
	if err != nil {
		return err
	}
	return holdDial(args[0], args[1], time.Second, os.Stdout, deadline)
}

// holdDial sends a holdLine every interval until the peer sends
// stopCommand, dialling again whenever the connection breaks. It reports
// each connection ("dials=D", and "reconnects=D-1" from the second on),
// each break ("broken=D why") and at the end the last line's number
// ("sent=N") as lines on out.
func holdDial(network, address string, interval time.Duration, out io.Writer, deadline time.Time) error {
	seq := 0
	for dial := 1; ; dial++ {
		c, attempts, err := dialUntil(network, address, deadline)
		if err != nil {
			return fmt.Errorf("dial %d to %s %s (%d attempts): %w", dial, network, address, attempts, err)
		}
		noKeepAlive(c)
		fmt.Fprintf(out, "dials=%d\n", dial)
		if dial > 1 {
			fmt.Fprintf(out, "reconnects=%d\n", dial-1)
		}
		stopped, err := holdConn(c, &seq, dial, interval)
		c.Close()
		if stopped {
			fmt.Fprintf(out, "sent=%d\n", seq)
			return nil
		}
		fmt.Fprintf(out, "broken=%d %v\n", dial, err)
	}
}

// holdConn sends numbered lines on c, the first at once, until the peer
// sends stopCommand (stopped) or the connection fails (err). seq is the
// number of the last line sent, over every connection.
func holdConn(c stream, seq *int, dial int, interval time.Duration) (stopped bool, err error) {
	ended := make(chan error, 1) // nil: the peer said stop
	go func() {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == stopCommand {
				ended <- nil
				return
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		ended <- fmt.Errorf("read: %w", err)
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case err := <-ended:
			return err == nil, err
		default:
		}
		*seq++
		if _, err := io.WriteString(c, holdLine(*seq, dial)+"\n"); err != nil {
			return false, fmt.Errorf("write line %d: %w", *seq, err)
		}
		select {
		case err := <-ended:
			return err == nil, err
		case <-tick.C:
		}
	}
}
