package nested

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/test/fixture"
)

// The direct backend runs the script with sh in the environment the
// scenarios rely on, and hands back its output and exit status.
func TestDirectRunsScriptWithScenarioEnvironment(t *testing.T) {
	tern := filepath.Join(t.TempDir(), "tern")
	os.WriteFile(tern, []byte("#!/bin/sh\n"), 0o755)
	fx := &fixture.Fixture{BzImage: "/k/bz", Vmlinux: "/k/elf", Initramfs: "/k/initrd"}
	d := &Direct{fx: fx, reason: "test"}
	job := Job{
		Files: map[string][]byte{
			"lib.sh":  []byte("greeting=hello\n"),
			"main.sh": []byte(". \"$SCENARIO_DIR/lib.sh\"\necho \"$greeting $KERNEL_BZIMAGE $KERNEL_ELF $INITRD $EXTRA\"\n[ -x \"$TERN\" ] && [ -d \"$OUT\" ] && [ \"$(pwd)\" = \"$OUT\" ] && echo env-ok\nexit 4\n"),
		},
		Entry: "main.sh",
		Tern:  tern,
		Env:   map[string]string{"EXTRA": "x"},
	}
	res, err := d.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if res.RC != 4 {
		t.Errorf("RC = %d, want the script's exit status 4", res.RC)
	}
	if want := "hello /k/bz /k/elf /k/initrd x\nenv-ok\n"; res.Output != want {
		t.Errorf("output %q, want %q", res.Output, want)
	}
}

func TestDirectTimeoutKillsTheScriptAndReportsTheTail(t *testing.T) {
	tern := filepath.Join(t.TempDir(), "tern")
	os.WriteFile(tern, nil, 0o755)
	d := &Direct{fx: &fixture.Fixture{}, reason: "test"}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.Run(ctx, Job{Files: map[string][]byte{"s.sh": []byte("echo last-words\nsleep 30 &\nwait\n")}, Entry: "s.sh", Tern: tern})
	if err == nil || !strings.Contains(err.Error(), "last-words") {
		t.Errorf("err = %v, want a timeout naming the output's tail", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("the run took %v after its deadline: its children were not killed", time.Since(start))
	}
}
