package nested

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// scriptEnv is the environment a scenario script gets: where tern, the
// guest kernel files and its initramfs are, and a scratch directory.
func scriptEnv(tern, bzImage, vmlinux, initrd, out, scenarioDir string, extra map[string]string) map[string]string {
	env := map[string]string{
		"TERN":           tern,
		"KERNEL_BZIMAGE": bzImage,
		"KERNEL_ELF":     vmlinux,
		"INITRD":         initrd,
		"OUT":            out,
		"SCENARIO_DIR":   scenarioDir,
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// shellExports renders env as sh "export K='V'" lines, sorted.
func shellExports(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(env[k], "'", `'\''`))
	}
	return b.String()
}

// writeFiles writes a job's scenario files into dir.
func writeFiles(dir string, files map[string][]byte) error {
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func checkJob(job Job) error {
	for name := range job.Files {
		if name != filepath.Base(name) || name == "." || name == ".." {
			return fmt.Errorf("scenario file %q: want a plain file name", name)
		}
	}
	if _, ok := job.Files[job.Entry]; !ok {
		return fmt.Errorf("scenario %q is not among the job's files", job.Entry)
	}
	if _, err := os.Stat(job.Tern); err != nil {
		return fmt.Errorf("tern binary: %w", err)
	}
	return nil
}

// outputSink collects output and copies it to live when set.
func outputSink(buf io.Writer, live io.Writer) io.Writer {
	if live == nil {
		return buf
	}
	return io.MultiWriter(buf, live)
}
