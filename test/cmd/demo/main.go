// Command demo boots the default test guest under a freshly built tern and
// shows its console live: a stock Debian kernel (bzImage) with the test
// initramfs, 1 vCPU and 256 MiB, that prints what it sees and powers off.
// It says first where it runs (this machine's /dev/kvm or the nested test
// host) and why.
//
//	go run ./test/cmd/demo
package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ternvm/tern/test/harness"
	"github.com/ternvm/tern/test/nested"
	"github.com/ternvm/tern/test/scenarios"
)

//go:embed demo.sh
var demoScript []byte

func main() {
	os.Exit(run())
}

func run() int {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := os.MkdirTemp("", "tern-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer os.RemoveAll(bin)

	fmt.Println("demo: preparing fixtures and building tern ...")
	env, err := harness.Prepare(ctx, bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	fmt.Println("demo: runs in the " + env.Backend.Describe())
	fmt.Printf("demo: kernel %s (%s), initramfs %s\n", env.Fixture.KernelVersion, env.Fixture.BzImage, env.Fixture.Initramfs)
	files, err := scenarios.Files(map[string][]byte{"demo.sh": demoScript})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	start := time.Now()
	job := nested.Job{Files: files, Entry: "demo.sh", Tern: env.Tern, Live: os.Stdout}
	const tries = 3
	var res *nested.Result
	for try := 1; ; try++ {
		// A wedged test host (the emulator, not tern) gets one fresh
		// host.
		res, err = nested.RunOnFreshHosts(ctx, env.Backend, job, 2, 15*time.Minute, func(msg string) {
			fmt.Fprintln(os.Stderr, "demo:", msg)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		why := nested.DeadGuest(res.Output)
		if try >= tries || why == "" {
			break
		}
		fmt.Printf("demo: %s: stock guests now and then die in the emulated test host (see the README, Tests); booting it again on a fresh test host (try %d of %d)\n", why, try+1, tries)
	}
	fmt.Printf("demo: finished in %v, exit status %d\n", time.Since(start).Round(time.Millisecond), res.RC)
	if missing := unseen(res.Output); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "demo: FAILED: the output lacks %s\n", strings.Join(missing, " and "))
		return 1
	}
	if res.RC != 0 {
		return res.RC
	}
	fmt.Println("demo: the guest ran its /init, which printed what it saw, and powered off; tern exited 0")
	return 0
}

// working is what the demo's output holds when the guest worked: its
// /init's first line, and tern's log line for the guest's poweroff (with
// or without the log's colours).
var working = []struct {
	what string
	re   *regexp.Regexp
}{
	{"the guest's /init line (TERN-GUEST uname=...)", regexp.MustCompile(`TERN-GUEST uname=\S+`)},
	{"tern's log line for the guest's poweroff", regexp.MustCompile(`VM stopped.*reason\S*="guest powered off"`)},
}

// unseen names what of working the output lacks.
func unseen(out string) []string {
	var missing []string
	for _, w := range working {
		if !w.re.MatchString(out) {
			missing = append(missing, w.what)
		}
	}
	return missing
}
