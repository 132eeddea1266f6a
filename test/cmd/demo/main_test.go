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
