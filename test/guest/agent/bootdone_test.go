package main

import (
	"runtime/debug"
	"testing"
)

// An OUT this process was never granted (no ioperm, no iopl) raises #GP;
// tryOutb must turn that into an error the retry loop sees, not a crash.
func TestTryOutbFaultIsAnError(t *testing.T) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if err := tryOutb(0x80, 0); err == nil {
		t.Fatal("an OUT to an ungranted port went through; want a fault reported as an error")
	} else {
		t.Logf("fault reported as: %v", err)
	}
}
