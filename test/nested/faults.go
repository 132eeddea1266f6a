package nested

import "regexp"

// GuestTripleFaulted matches tern's log line for a guest that shut its
// vCPU down with a triple fault. Stock guests in the emulated test host
// now and then do (cause unknown, never twice in a row so far); the
// end-to-end tests and the bench give such a run a fresh test host, which
// a tern bug that crashes the guest every time still fails. It matches
// the line as logrus's text formatter writes it both without colours
// (msg="...") and with them (on a terminal).
var GuestTripleFaulted = regexp.MustCompile(`(msg="|\] )vCPU shut down \(triple fault\)`)

// GuestHung matches the line the scenarios' lib.sh prints (say_limit)
// when a tern run was stopped by its time limit: its guest hung, as stock
// guests in the emulated test host now and then do (QEMU's microvm guests
// too), or tern did.
var GuestHung = regexp.MustCompile(`(?m)^SCENARIO-RUN-LIMIT `)

// DeadGuest says how a stock guest died in a run whose output is out, ""
// if none did: it triple-faulted, or it hung until its tern run's time
// limit. The end-to-end tests, the demo and the bench give a failed run
// with such a guest a fresh test host; a tern bug that kills or stalls
// its guest every time still fails every try.
func DeadGuest(out string) string {
	switch {
	case GuestTripleFaulted.MatchString(out):
		return "a guest triple-faulted"
	case GuestHung.MatchString(out):
		return "a guest hung until its tern run's time limit"
	}
	return ""
}
