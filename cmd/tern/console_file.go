package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/ternvm/tern/internal/safefile"
)

// openConsoleFile opens --console PATH for the guest's output: a regular
// file, created mode 0600 (the guest's console can hold secrets) or
// truncated, or a FIFO with a reader; see safefile.OpenOutput.
func openConsoleFile(path string) (*os.File, error) {
	f, err := safefile.OpenOutput(path, true)
	if errors.Is(err, safefile.ErrNoReader) {
		return nil, fmt.Errorf("console %w", err)
	}
	return f, err
}
