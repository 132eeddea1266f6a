package acpi

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestIASLDisassembles runs ACPICA's disassembler, the reference parser,
// over every table: it must parse each one without a warning (a bad
// checksum or a malformed field is reported as one) and recover the ASL
// the DSDT was meant to hold.
func TestIASLDisassembles(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Skip("iasl not found (apt-get install acpica-tools); skipping the ACPICA disassembly check")
	}
	blob := build(t, fullConfig)
	fadt, dsdt := fadtAndDSDT(t, blob)
	tables := xsdtEntries(t, blob)
	tables["XSDT"] = table(t, blob, le.Uint64(blob[24:]))
	tables["FACP"] = fadt
	tables["DSDT"] = dsdt

	dir := t.TempDir()
	asl := map[string]string{}
	for sig, tb := range tables {
		path := filepath.Join(dir, strings.ToLower(sig)+".dat")
		if err := os.WriteFile(path, tb, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(iasl, "-d", path)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("iasl -d %s: %v\n%s", sig, err, out)
		}
		for _, bad := range []string{"Warning", "Error", "Incorrect", "Invalid"} {
			if strings.Contains(string(out), bad) {
				t.Errorf("iasl -d %s reports %q:\n%s", sig, bad, out)
			}
		}
		text, err := os.ReadFile(strings.TrimSuffix(path, ".dat") + ".dsl")
		if err != nil {
			t.Fatalf("iasl -d %s wrote no listing: %v", sig, err)
		}
		if strings.Contains(string(text), "Incorrect") {
			t.Errorf("%s listing flags a field as incorrect:\n%s", sig, text)
		}
		asl[sig] = string(text)
	}

	for _, want := range []string{
		"Name (_S5, Package (0x04)",
		"Scope (\\_SB)",
		"Device (COM1)",
		`Name (_HID, EisaId ("PNP0501")`,
		"IO (Decode16,\n                    0x03F8,",
		"IRQNoFlags ()\n                    {4}",
		"Device (VR00)",
		"Device (VR01)",
		`Name (_HID, "LNRO0005")`,
		"Name (_CCA, One)",
		"Memory32Fixed (ReadWrite,\n                    0xD0001000,",
		"Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )\n                {\n                    0x00000006,",
	} {
		if !strings.Contains(asl["DSDT"], want) {
			t.Errorf("disassembled DSDT lacks %q:\n%s", want, asl["DSDT"])
		}
	}
	for _, want := range []string{"Hardware Reduced (V5) : 1", "Reset Register Supported (V2) : 1", "FADT Minor Revision : 04"} {
		if !strings.Contains(asl["FACP"], want) {
			t.Errorf("disassembled FADT lacks %q", want)
		}
	}
}
