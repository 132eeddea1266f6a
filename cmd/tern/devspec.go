package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ternvm/tern/virtio/balloon"
	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/vsock"
	"github.com/ternvm/tern/vmm"
)

// parseKV splits "k1=v1,k2=v2" into a map, refusing keys outside allowed,
// keys given twice and items without '='.
func parseKV(flag, spec string, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("--%s: empty value", flag)
	}
	for _, item := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("--%s: %q is not key=value (keys: %s)", flag, item, strings.Join(allowed, ", "))
		}
		if !contains(allowed, k) {
			return nil, fmt.Errorf("--%s: unknown key %q (keys: %s)", flag, k, strings.Join(allowed, ", "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--%s: key %q given twice", flag, k)
		}
		out[k] = v
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func parseBool(flag, key, v string) (bool, error) {
	switch v {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("--%s: %s=%q is not on/off", flag, key, v)
}

// parseDisk reads --disk path=FILE[,ro=on][,id=SERIAL][,root=on] with
// optional rate limits: bw=SIZE (bytes per second), iops=N, their
// one-time bursts bw_burst=SIZE and iops_burst=N, and refill=DURATION.
func parseDisk(spec string) (vmm.DiskConfig, error) {
	kv, err := parseKV("disk", spec, append([]string{"path", "ro", "id", "root", "refill"}, limitKeys("", "iops")...)...)
	if err != nil {
		return vmm.DiskConfig{}, err
	}
	d := vmm.DiskConfig{Config: block.Config{Path: kv["path"], ID: kv["id"]}}
	if d.Path == "" {
		return d, fmt.Errorf("--disk %s: path= is required", spec)
	}
	if d.ReadOnly, err = parseBool("disk", "ro", kv["ro"]); err != nil {
		return d, err
	}
	if d.Root, err = parseBool("disk", "root", kv["root"]); err != nil {
		return d, err
	}
	refill, err := parseRefill("disk", kv)
	if err != nil {
		return d, err
	}
	if d.RateLimit, err = parseLimit("disk", kv, "", "iops", refill); err != nil {
		return d, err
	}
	if _, ok := kv["refill"]; ok && d.RateLimit == nil {
		return d, fmt.Errorf("--disk: refill= without bw= or iops=")
	}
	return d, nil
}

// netSpec is one --net: the device, and whether the guest reaches the
// metadata service (--mmds-data) through it.
type netSpec struct {
	virtionet.Config
	MMDS bool
}

// parseNet reads --net tap=NAME[,mac=MAC][,bridge=BRIDGE][,id=ID][,mmds=on]
// with optional rate limits for each direction (rx: to the guest, tx: from
// it): rx_bw=SIZE and tx_bw=SIZE (bytes per second), rx_pps=N and tx_pps=N
// (frames per second), their _burst variants, and refill=DURATION.
func parseNet(spec string) (netSpec, error) {
	keys := append([]string{"tap", "mac", "bridge", "id", "mmds", "refill"}, limitKeys("rx_", "pps")...)
	kv, err := parseKV("net", spec, append(keys, limitKeys("tx_", "pps")...)...)
	if err != nil {
		return netSpec{}, err
	}
	n := netSpec{Config: virtionet.Config{TAP: kv["tap"], Bridge: kv["bridge"], ID: kv["id"]}}
	if n.MMDS, err = parseBool("net", "mmds", kv["mmds"]); err != nil {
		return n, err
	}
	if n.TAP == "" {
		return n, fmt.Errorf("--net %s: tap= is required", spec)
	}
	if m := kv["mac"]; m != "" {
		mac, err := net.ParseMAC(m)
		if err != nil || len(mac) != 6 {
			return n, fmt.Errorf("--net: mac=%q is not a MAC address like 02:00:00:00:00:01", m)
		}
		n.MAC = mac
	}
	refill, err := parseRefill("net", kv)
	if err != nil {
		return n, err
	}
	if n.RxRateLimit, err = parseLimit("net", kv, "rx_", "pps", refill); err != nil {
		return n, err
	}
	if n.TxRateLimit, err = parseLimit("net", kv, "tx_", "pps", refill); err != nil {
		return n, err
	}
	if _, ok := kv["refill"]; ok && n.RxRateLimit == nil && n.TxRateLimit == nil {
		return n, fmt.Errorf("--net: refill= without a rate limit")
	}
	return n, nil
}

// parseVsock reads --vsock cid=N,socket=PATH.
func parseVsock(spec string) (*vsock.Config, error) {
	kv, err := parseKV("vsock", spec, "cid", "socket")
	if err != nil {
		return nil, err
	}
	cid, err := strconv.ParseUint(kv["cid"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("--vsock: cid=%q is not a number", kv["cid"])
	}
	if kv["socket"] == "" {
		return nil, fmt.Errorf("--vsock %s: socket= is required", spec)
	}
	return &vsock.Config{GuestCID: cid, SocketPath: kv["socket"]}, nil
}

// parseBalloon reads --balloon size=SIZE[,deflate_on_oom=on][,stats=DURATION].
func parseBalloon(spec string) (*balloon.Config, error) {
	kv, err := parseKV("balloon", spec, "size", "deflate_on_oom", "stats")
	if err != nil {
		return nil, err
	}
	c := &balloon.Config{}
	if kv["size"] != "" {
		size, err := parseSizeAllowZero(kv["size"])
		if err != nil {
			return nil, fmt.Errorf("--balloon: size: %w", err)
		}
		if size%(1<<20) != 0 || size>>20 > 1<<31 {
			return nil, fmt.Errorf("--balloon: size=%s is not a whole number of MiB", kv["size"])
		}
		c.TargetMiB = uint32(size >> 20)
	}
	if c.DeflateOnOOM, err = parseBool("balloon", "deflate_on_oom", kv["deflate_on_oom"]); err != nil {
		return nil, err
	}
	if s := kv["stats"]; s != "" {
		if c.StatsPollInterval, err = time.ParseDuration(s); err != nil || c.StatsPollInterval <= 0 {
			return nil, fmt.Errorf("--balloon: stats=%q is not a positive duration like 5s", s)
		}
	}
	return c, nil
}
