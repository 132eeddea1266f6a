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
