package vsock

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzReadConnect feeds arbitrary bytes from a host program to the
// CONNECT line parser. It must stop at the first newline (what follows
// is the program's data for the guest), never read past 32 bytes of
// line, and accept only what "CONNECT <port>\n" names again.
func FuzzReadConnect(f *testing.F) {
	for _, s := range []string{
		"CONNECT 5000\n", "CONNECT 5000\r\nhello", "CONNECT 4294967295\n", "CONNECT 4294967296\n",
		"CONNECT -1\n", "CONNECT \n", "connect 1\n", "CONNECT  7 \n", "CONNECT 1", "\n",
		"CONNECT 00000000000000000000000001\n", "CONNECT 000000000000000000000000001\n", "CONNECT 0x10\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		port, err := readConnect(r)
		consumed := len(in) - r.Len()
		nl := bytes.IndexByte(in, '\n')
		if err != nil {
			// A refused line is still read no further than its newline
			// or its 33rd byte.
			if consumed > maxConnectLine+1 || (nl >= 0 && consumed > nl+1) {
				t.Fatalf("refused %q after reading %d bytes", in, consumed)
			}
			return
		}
		if nl < 0 || consumed != nl+1 {
			t.Fatalf("accepted %q reading %d bytes, but the line ends at %d", in, consumed, nl)
		}
		if nl > maxConnectLine {
			t.Fatalf("accepted a %d-byte line", nl)
		}
		again, err := readConnect(bytes.NewReader(fmt.Appendf(nil, "CONNECT %d\n", port)))
		if err != nil || again != port {
			t.Fatalf("%q gave port %d, whose own line gives %d, %v", in, port, again, err)
		}
	})
}
