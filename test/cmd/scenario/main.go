// Command scenario runs one scenario script (a file of your own, or one of
// test/scenarios by name) where the end-to-end tests would, and streams
// its output: for trying a scenario while writing it.
//
//	go run ./test/cmd/scenario my.sh
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ternvm/tern/test/harness"
	"github.com/ternvm/tern/test/nested"
	"github.com/ternvm/tern/test/scenarios"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: scenario SCRIPT")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1]))
}

func run(script string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin, err := os.MkdirTemp("", "tern-scenario-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario:", err)
		return 1
	}
	defer os.RemoveAll(bin)
	var extra map[string][]byte
	entry := filepath.Base(script)
	if data, err := os.ReadFile(script); err == nil {
		extra = map[string][]byte{entry: data}
	}
	env, err := harness.Prepare(ctx, bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario:", err)
		return 1
	}
	fmt.Println("scenario: runs in the " + env.Backend.Describe())
	files, err := scenarios.Files(extra)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario:", err)
		return 1
	}
	res, err := env.Backend.Run(ctx, nested.Job{Files: files, Entry: entry, Tern: env.Tern, Live: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario:", err)
		return 1
	}
	fmt.Printf("scenario: %s exited %d\n", entry, res.RC)
	return res.RC
}
