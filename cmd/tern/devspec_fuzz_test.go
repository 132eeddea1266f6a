package main

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzDevSpec feeds arbitrary strings to the device flag parsers. A spec
// is refused or parsed into a value that, written back as a spec, parses
// to the same value.
func FuzzDevSpec(f *testing.F) {
	for _, s := range []string{
		"path=/d.img", "path=/d.img,ro=on,id=vda,root=yes", "path=/d.img,bw=10M,iops=100,bw_burst=1G,refill=10ms",
		"tap=t,rx_bw=1M,tx_pps=10,rx_pps_burst=5,rx_pps=1", "path=x,iops=18446744073709551615", "path=", "path=a,path=b", "ro=on", "path=x,bogus=1",
		"tap=tap0", "tap=tap0,mac=02:00:00:00:00:01,bridge=br0", "tap=t,id=eth0,mmds=on", "tap=t,mac=00:00:5e:00:53:01:00:00", "mac=zz",
		"cid=3,socket=/v.sock", "cid=-1,socket=x", "cid=18446744073709551616,socket=x",
		"size=256M,deflate_on_oom=on,stats=5s", "size=0", "size=1G,stats=-1s", "size=1025K", "size=2048T", "",
	} {
		for kind := range byte(4) {
			f.Add(kind, s)
		}
	}
	f.Fuzz(func(t *testing.T, kind byte, spec string) {
		switch kind % 4 {
		case 0:
			d, err := parseDisk(spec)
			if err != nil {
				return
			}
			if d.Path == "" || strings.Contains(d.Path, ",") || strings.Contains(d.ID, ",") {
				t.Fatalf("%q gave %+v", spec, d)
			}
			if l := d.RateLimit; l != nil && (!l.Enabled() || l.Validate() != nil) {
				t.Fatalf("%q gave limits %+v", spec, l)
			}
			// The limits are checked by TestRateLimitSpecs; the
			// round trip covers the rest.
			d.RateLimit = nil
			again, err := parseDisk(fmt.Sprintf("path=%s,id=%s,ro=%t,root=%t", d.Path, d.ID, d.ReadOnly, d.Root))
			if err != nil || again != d {
				t.Fatalf("%q gave %+v; written back: %+v, %v", spec, d, again, err)
			}
		case 1:
			n, err := parseNet(spec)
			if err != nil {
				return
			}
			if n.TAP == "" || (n.MAC != nil && len(n.MAC) != 6) {
				t.Fatalf("%q gave %+v", spec, n)
			}
			if strings.Contains(n.ID, ",") {
				t.Fatalf("%q gave id %q", spec, n.ID)
			}
			back := fmt.Sprintf("tap=%s,bridge=%s,mmds=%t", n.TAP, n.Bridge, n.MMDS)
			if n.MAC != nil {
				back += ",mac=" + n.MAC.String()
			}
			if n.ID != "" {
				back += ",id=" + n.ID
			}
			again, err := parseNet(back)
			if err != nil || again.TAP != n.TAP || again.Bridge != n.Bridge || again.MAC.String() != n.MAC.String() || again.ID != n.ID || again.MMDS != n.MMDS {
				t.Fatalf("%q gave %+v; written back: %+v, %v", spec, n, again, err)
			}
		case 2:
			v, err := parseVsock(spec)
			if err != nil {
				return
			}
			if v.SocketPath == "" {
				t.Fatalf("%q gave %+v", spec, v)
			}
			again, err := parseVsock(fmt.Sprintf("cid=%d,socket=%s", v.GuestCID, v.SocketPath))
			if err != nil || *again != *v {
				t.Fatalf("%q gave %+v; written back: %+v, %v", spec, v, again, err)
			}
		case 3:
			b, err := parseBalloon(spec)
			if err != nil {
				return
			}
			if b.StatsPollInterval < 0 {
				t.Fatalf("%q gave a negative interval", spec)
			}
			back := fmt.Sprintf("size=%dM,deflate_on_oom=%t", b.TargetMiB, b.DeflateOnOOM)
			if b.TargetMiB == 0 {
				back = fmt.Sprintf("size=0,deflate_on_oom=%t", b.DeflateOnOOM)
			}
			if b.StatsPollInterval > 0 {
				back += ",stats=" + b.StatsPollInterval.String()
			}
			again, err := parseBalloon(back)
			if err != nil || *again != *b {
				t.Fatalf("%q gave %+v; written back %q: %+v, %v", spec, b, back, again, err)
			}
		}
	})
}

// FuzzParseSize checks sizes: a parsed size is never zero, is a whole
// number of its unit, and its byte count written back parses to itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"256M", "2G", "1g", "4KiB", "10b", "0", "16384P", "17179869184G", "18446744073709551615", " 3T ", "-1M", "1.5G", "MiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n == 0 {
			t.Fatalf("%q parsed to 0", s)
		}
		again, err := parseSize(fmt.Sprint(n))
		if err != nil || again != n {
			t.Fatalf("%q gave %d, which parses back to %d, %v", s, n, again, err)
		}
	})
}

// FuzzParseOverrides splits arbitrary text into --override flags (one a
// line): accepted overrides name each old path once, with a non-empty
// replacement.
func FuzzParseOverrides(f *testing.F) {
	f.Add("/old/disk.img=/new/disk.img\ntap0=tap1")
	f.Add("a=b\na=c")
	f.Add("=x\ny=")
	f.Add("a==b")
	f.Fuzz(func(t *testing.T, text string) {
		specs := strings.Split(text, "\n")
		out, err := parseOverrides("--override", specs)
		if err != nil {
			return
		}
		if len(out) != len(specs) {
			t.Fatalf("%d overrides from %d flags", len(out), len(specs))
		}
		for old, repl := range out {
			if old == "" || repl == "" || strings.Contains(old, "=") {
				t.Fatalf("override %q=%q", old, repl)
			}
		}
	})
}
