package main

import "testing"

// The bench runs again after a guest's triple fault or hang, and not
// after a failure of another kind.
func TestRetryReason(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{`time="20:44:20.426199" level=warning msg="vCPU shut down (triple fault)" rip=0xfff0` + "\n", true},
		{"BENCH-ERROR tern did not log boot-time (waited 120s); its log and console:\nSCENARIO-RUN-LIMIT bench: tern was stopped after its 120s (its guest did not boot)\n", true},
		{"BENCH-ERROR no anonymous mapping of 131072 kB (the guest RAM) in smaps\n", false},
		{"BENCH-ERROR boot: too few good runs (tern 2 of 5, qemu 5 of 5)\n", true},
		{"BENCH-ERROR snapshot create of the 2G guest failed:\n", false},
		{"[guest] echo SCENARIO-RUN-LIMIT quoted mid-line\n", false},
	} {
		if got := retryReason(tc.out); (got != "") != tc.want {
			t.Errorf("retryReason(%q) = %q, want a reason: %v", tc.out, got, tc.want)
		}
	}
}
