package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// The child half of TestClosedStdoutDoesNotKillTern: with SIGPIPE
// handled as tern's main handles it, write to a stdout whose reader is
// gone.
func TestSIGPIPEChild(t *testing.T) {
	if os.Getenv("TERN_SIGPIPE_CHILD") != "1" {
		t.Skip("run by TestClosedStdoutDoesNotKillTern")
	}
	ignoreSIGPIPE()
	for i := 0; i < 100; i++ {
		if _, err := os.Stdout.Write([]byte("guest output\n")); err != nil {
			if errors.Is(err, syscall.EPIPE) {
				os.Exit(0)
			}
			os.Exit(3)
		}
	}
	os.Exit(4)
}

func TestClosedStdoutDoesNotKillTern(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the console's reader is gone
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGPIPEChild$")
	cmd.Env = append(os.Environ(), "TERN_SIGPIPE_CHILD=1")
	cmd.Stdout = w
	err = cmd.Run()
	w.Close()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				t.Fatalf("killed by %v writing to a closed pipe", ws.Signal())
			}
		}
		t.Fatalf("child: %v", err)
	}
}

func TestSIGHUPStopsTheVMLikeSIGTERM(t *testing.T) {
	want := map[os.Signal]bool{syscall.SIGINT: true, syscall.SIGTERM: true, syscall.SIGHUP: true}
	for _, s := range stopSignals() {
		delete(want, s)
	}
	if len(want) != 0 {
		t.Errorf("not stop signals: %v", want)
	}
	// runUntilStopped exits 128+N for the signal N that stopped the VM.
	if int(syscall.SIGHUP) != 1 {
		t.Errorf("SIGHUP is %d", syscall.SIGHUP)
	}
}
