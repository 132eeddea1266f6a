package nested

import "testing"

// The rerun rule must recognise tern's own log line for a triple fault, as
// a scenario prints it, and nothing else.
func TestGuestTripleFaultedMatchesTernsLogLine(t *testing.T) {
	for _, seen := range []string{
		`        [source tern] time="06:20:36.260531" level=warning msg="vCPU shut down (triple fault)" vcpu=0`,
		"\x1b[33mWARN\x1b[0m[18:45:41.339010] vCPU shut down (triple fault)                 \x1b[33mcr0\x1b[0m=0x10",
	} {
		if !GuestTripleFaulted.MatchString(seen) {
			t.Errorf("%q not recognised", seen)
		}
	}
	for _, other := range []string{
		`[source tern] time="06:20:36.265309" level=info msg="VM stopped" reason="guest requested reset"`,
		`SCENARIO-CHECK FAIL tern migrate send exits 0 (1)`,
		`[    3.195222] guest line that mentions vCPU shut down (triple fault) itself`,
	} {
		if GuestTripleFaulted.MatchString(other) {
			t.Errorf("%q taken for a triple fault", other)
		}
	}
}

// A run's output shows a dead guest when tern logged a triple fault or
// lib.sh said a run ran into its time limit (as the demo, the bench and
// the scenarios print it), and not for a guest that powered off, a tern
// that failed otherwise, or the marker quoted inside another line.
func TestDeadGuest(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{`time="20:44:20.426199" level=warning msg="vCPU shut down (triple fault)" rip=0xfff0` + "\n", true},
		{"DEMO: tern exited with status 143\nSCENARIO-RUN-LIMIT demo: tern was stopped after its 120s (rc 143)\n", true},
		{"BENCH-ERROR 2G guest did not boot; its log:\nSCENARIO-RUN-LIMIT src-2G: tern was stopped after its 120s (its guest did not boot)\n", true},
		{"TERN-GUEST uname=6.1\n" + `time="1" level=info msg="VM stopped" reason="guest powered off"` + "\nDEMO: tern exited with status 0\n", false},
		{"tern: --memory: \"lots\" is not a size\nDEMO: tern exited with status 1\n", false},
		{"SCENARIO-CHECK FAIL the guest wrote its file\n", false},
		{"[x guest] echo SCENARIO-RUN-LIMIT quoted mid-line\n", false},
	} {
		if got := DeadGuest(tc.out); (got != "") != tc.want {
			t.Errorf("DeadGuest(%q) = %q, want a reason: %v", tc.out, got, tc.want)
		}
	}
}
