package nested

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"time"
)

// monitorPrompt ends every answer of QEMU's human monitor.
var monitorPrompt = []byte("(qemu) ")

// monitorAsk runs commands on the QEMU human monitor listening on the
// Unix socket at path, for the report of a wedged test host, and returns
// each answer. It gives up after timeout with the answers it has.
func monitorAsk(path string, timeout time.Duration, cmds ...string) ([]string, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("QEMU monitor: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	readPrompt := func() ([]byte, error) {
		var b []byte
		for !bytes.HasSuffix(b, monitorPrompt) {
			ch, err := r.ReadByte()
			if err != nil {
				return b, fmt.Errorf("QEMU monitor: %w", err)
			}
			b = append(b, ch)
		}
		return bytes.TrimSuffix(b, monitorPrompt), nil
	}
	if _, err := readPrompt(); err != nil { // the banner
		return nil, err
	}
	var answers []string
	for _, cmd := range cmds {
		if _, err := fmt.Fprintf(c, "%s\n", cmd); err != nil {
			return answers, fmt.Errorf("QEMU monitor: %w", err)
		}
		b, err := readPrompt()
		if err != nil {
			return answers, err
		}
		// The monitor echoes the command line first.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		answers = append(answers, strings.ReplaceAll(string(b), "\r", ""))
	}
	return answers, nil
}

// wedgedCPUs says where the test host's CPUs are: QEMU's "info cpus" and,
// of "info registers -a", the lines that place each CPU (RIP with flags,
// CPL and HLT; the general registers; CS; the control registers).
func wedgedCPUs(monitor string) string {
	a, err := monitorAsk(monitor, 10*time.Second, "info cpus", "info registers -a")
	var b strings.Builder
	if len(a) > 0 {
		b.WriteString(a[0])
	}
	if len(a) > 1 {
		for _, line := range strings.SplitAfter(a[1], "\n") {
			for _, p := range []string{"CPU#", "RAX=", "RSI=", "R8 =", "R12=", "RIP=", "CS =", "CR0="} {
				if strings.HasPrefix(line, p) {
					b.WriteString(line)
					break
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintf(&b, "(%v)\n", err)
	}
	return b.String()
}
