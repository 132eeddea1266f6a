package nested

import (
	"bufio"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// fakeMonitor answers like QEMU 7.2's human monitor: a banner, then for
// each command its echo and the answer from answers.
func fakeMonitor(t *testing.T, answers map[string]string) string {
	path := filepath.Join(t.TempDir(), "mon.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) "))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.TrimSpace(line)
			c.Write([]byte(cmd + "\r\n" + strings.ReplaceAll(answers[cmd], "\n", "\r\n") + "(qemu) "))
		}
	}()
	return path
}

func TestWedgedCPUsKeepsWhereEachCPUIs(t *testing.T) {
	mon := fakeMonitor(t, map[string]string{
		"info cpus": "* CPU #0: thread_id=11\n  CPU #1: thread_id=12\n",
		"info registers -a": "\nCPU#0\nRAX=1 RBX=2\nRIP=ffffffff81a17a0b RFL=00000206 CPL=0 HLT=1\nYMM00=0\nCR0=80050033 CR2=0\n" +
			"\nCPU#1\nRIP=ffffffffc0a01234 RFL=00000002 CPL=0 HLT=0\nFPR0=0\n",
	})
	got := wedgedCPUs(mon)
	want := "* CPU #0: thread_id=11\n  CPU #1: thread_id=12\n" +
		"CPU#0\nRAX=1 RBX=2\nRIP=ffffffff81a17a0b RFL=00000206 CPL=0 HLT=1\nCR0=80050033 CR2=0\n" +
		"CPU#1\nRIP=ffffffffc0a01234 RFL=00000002 CPL=0 HLT=0\n"
	if got != want {
		t.Errorf("report:\n%s\nwant\n%s", got, want)
	}
}

func TestWedgedCPUsSaysWhenTheMonitorIsUnreachable(t *testing.T) {
	got := wedgedCPUs(filepath.Join(t.TempDir(), "none"))
	if !strings.Contains(got, "QEMU monitor") {
		t.Errorf("report %q does not say the monitor was unreachable", got)
	}
}
