package cputemplate

import (
	"reflect"
	"testing"
)

// FuzzCustomTemplate feeds ParseCustom what a client might PUT to
// /cpu-config: it must not panic, and a template it takes must write out
// and read back the same, and apply to a CPUID list without panicking.
func FuzzCustomTemplate(f *testing.F) {
	f.Add([]byte(docExample))
	f.Add([]byte(`{"cpuid_modifiers":[{"leaf":"0x80000001","subleaf":"0x0","flags":0,"modifiers":[{"register":"ecx","bitmap":"0bxx_0"}]}]}`))
	f.Add([]byte(`{"kvm_capabilities":["1","!2"],"msr_modifiers":[{"addr":"0b1","bitmap":"0b1x"}]}`))
	f.Add([]byte(`{"reg_modifiers":[]}`))
	f.Add([]byte(`{"cpuid_modifiers":[{"leaf":"0x1","subleaf":"0x0","modifiers":[{"register":"eax","bitmap":"0b_"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tm, err := ParseCustom(data)
		if err != nil {
			return
		}
		out, err := tm.MarshalCustom()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCustom(out)
		if err != nil {
			t.Fatalf("own output %s refused: %v", out, err)
		}
		if !reflect.DeepEqual(normal(back), normal(tm)) {
			t.Fatalf("%s read back as %+v, want %+v", out, back, tm)
		}
		_, _ = tm.ApplyCPUID(hostEntries(0x5a5a5a5a))
	})
}

// normal makes empty and nil lists alike.
func normal(t *Template) Template {
	c := *t
	for i := range c.CPUID {
		if len(c.CPUID[i].Registers) == 0 {
			c.CPUID[i].Registers = nil
		}
	}
	return c
}
