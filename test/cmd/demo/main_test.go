package main

import (
	"reflect"
	"testing"
)

// What the demo calls working must be found in real output, coloured or
// not, and be missed where the guest died.
func TestUnseen(t *testing.T) {
	uname := "[    9.1] TERN-GUEST uname=6.1.0-57-cloud-amd64\r\n"
	coloured := "\x1b[36mINFO\x1b[0m[18:43:47.711756] VM stopped                                    \x1b[36mreason\x1b[0m=\"guest powered off\"\r\n"
	plain := `time="18:43:47.711756" level=info msg="VM stopped" reason="guest powered off"` + "\n"
	died := "\x1b[36mINFO\x1b[0m[18:45:41.344443] VM stopped                                    \x1b[36mreason\x1b[0m=\"guest triple-faulted\"\r\n"
	for _, out := range []string{uname + coloured, uname + plain} {
		if m := unseen(out); len(m) != 0 {
			t.Errorf("working output %q: missing %v", out, m)
		}
	}
	if m := unseen("[    2.1] XSAVE consistency problem\n" + died); !reflect.DeepEqual(m, []string{working[0].what, working[1].what}) {
		t.Errorf("a guest that died before /init: missing %v, want both", m)
	}
	if m := unseen(uname + died); !reflect.DeepEqual(m, []string{working[1].what}) {
		t.Errorf("a guest that died after /init: missing %v, want the poweroff", m)
	}
}

// The demo boots again after a triple fault or a hang, and not after a
// guest that powered off or a tern that failed otherwise.
func TestRetryReason(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{`time="20:44:20.426199" level=warning msg="vCPU shut down (triple fault)" rip=0xfff0` + "\n", true},
		{"DEMO: tern exited with status 143\nDEMO-TIMEOUT: the guest did not power off within 120s; tern was stopped\n", true},
		{"TERN-GUEST uname=6.1\n" + `time="1" level=info msg="VM stopped" reason="guest powered off"` + "\nDEMO: tern exited with status 0\n", false},
		{"tern: --memory: \"lots\" is not a size\nDEMO: tern exited with status 1\n", false},
		{"DEMO: $TERN run ... DEMO-TIMEOUT: quoted, not demo.sh's line\n", false},
	} {
		if got := retryReason(tc.out); (got != "") != tc.want {
			t.Errorf("retryReason(%q) = %q, want a reason: %v", tc.out, got, tc.want)
		}
	}
}
