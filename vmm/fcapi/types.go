package fcapi

import (
	"encoding/json"

	"github.com/ternvm/tern/vmm/api"
)

// The request and response bodies, with Firecracker's field names (its API
// description, version APIVersion). Pointers mark fields whose absence
// differs from their zero value.

// MachineConfig is the body of /machine-config.
type MachineConfig struct {
	VCPUCount       *int    `json:"vcpu_count,omitempty"`
	MemSizeMiB      *uint64 `json:"mem_size_mib,omitempty"`
	SMT             *bool   `json:"smt,omitempty"`
	TrackDirtyPages *bool   `json:"track_dirty_pages,omitempty"`
	HugePages       *string `json:"huge_pages,omitempty"`
	CPUTemplate     *string `json:"cpu_template,omitempty"`
}

// BootSource is the body of PUT /boot-source.
type BootSource struct {
	KernelImagePath string `json:"kernel_image_path"`
	InitrdPath      string `json:"initrd_path,omitempty"`
	BootArgs        string `json:"boot_args,omitempty"`
}

// Drive is the body of PUT /drives/{id}; PATCH takes DriveID, PathOnHost
// and RateLimiter.
type Drive struct {
	DriveID      *string          `json:"drive_id"`
	PathOnHost   *string          `json:"path_on_host,omitempty"`
	IsRootDevice *bool            `json:"is_root_device,omitempty"`
	IsReadOnly   *bool            `json:"is_read_only,omitempty"`
	PartUUID     *string          `json:"partuuid,omitempty"`
	CacheType    *string          `json:"cache_type,omitempty"`
	IOEngine     *string          `json:"io_engine,omitempty"`
	Socket       *string          `json:"socket,omitempty"`
	RateLimiter  *api.RateLimiter `json:"rate_limiter,omitempty"`
}

// NetworkInterface is the body of PUT /network-interfaces/{id}; PATCH
// takes IfaceID and the rate limiters.
type NetworkInterface struct {
	IfaceID       *string          `json:"iface_id"`
	HostDevName   *string          `json:"host_dev_name,omitempty"`
	GuestMAC      *string          `json:"guest_mac,omitempty"`
	MTU           *int             `json:"mtu,omitempty"`
	RxRateLimiter *api.RateLimiter `json:"rx_rate_limiter,omitempty"`
	TxRateLimiter *api.RateLimiter `json:"tx_rate_limiter,omitempty"`
}

// Vsock is the body of PUT /vsock.
type Vsock struct {
	GuestCID *uint64 `json:"guest_cid"`
	UDSPath  string  `json:"uds_path"`
	VsockID  string  `json:"vsock_id,omitempty"` // deprecated by Firecracker; ignored
}

// Entropy is the body of PUT /entropy.
type Entropy struct {
	RateLimiter *api.RateLimiter `json:"rate_limiter,omitempty"`
}

// Balloon is the body of PUT and GET /balloon.
type Balloon struct {
	AmountMiB             *uint32 `json:"amount_mib"`
	DeflateOnOOM          *bool   `json:"deflate_on_oom"`
	StatsPollingIntervalS *uint32 `json:"stats_polling_interval_s,omitempty"`
	FreePageHinting       *bool   `json:"free_page_hinting,omitempty"`
	FreePageReporting     *bool   `json:"free_page_reporting,omitempty"`
}

// BalloonUpdate is the body of PATCH /balloon.
type BalloonUpdate struct {
	AmountMiB *uint32 `json:"amount_mib"`
}

// BalloonStatsUpdate is the body of PATCH /balloon/statistics.
type BalloonStatsUpdate struct {
	StatsPollingIntervalS *uint32 `json:"stats_polling_interval_s"`
}

// Serial is the body of PUT /serial.
type Serial struct {
	SerialOutPath *string          `json:"serial_out_path,omitempty"`
	RateLimiter   *api.TokenBucket `json:"rate_limiter,omitempty"`
}

// Logger is the body of PUT /logger.
type Logger struct {
	LogPath       *string `json:"log_path,omitempty"`
	Level         *string `json:"level,omitempty"`
	ShowLevel     *bool   `json:"show_level,omitempty"`
	ShowLogOrigin *bool   `json:"show_log_origin,omitempty"`
	Module        *string `json:"module,omitempty"`
}

// Metrics is the body of PUT /metrics.
type Metrics struct {
	MetricsPath string `json:"metrics_path"`
}

// MMDSConfig is the body of PUT /mmds/config: which MMDS version the
// guest sees, on which interfaces and at which address. MMDSConfig()
// returns the one stored, for the MMDS wiring to read.
type MMDSConfig struct {
	Version           string   `json:"version,omitempty"`
	NetworkInterfaces []string `json:"network_interfaces"`
	IPv4Address       string   `json:"ipv4_address,omitempty"`
	IMDSCompat        bool     `json:"imds_compat,omitempty"`
}

// VMState is the body of PATCH /vm.
type VMState struct {
	State string `json:"state"`
}

// SnapshotCreate is the body of PUT /snapshot/create.
type SnapshotCreate struct {
	SnapshotType string `json:"snapshot_type,omitempty"`
	SnapshotPath string `json:"snapshot_path"`
	MemFilePath  string `json:"mem_file_path"`
	Version      string `json:"version,omitempty"` // older clients send it; ignored
}

// MemBackend is SnapshotLoad's memory backend.
type MemBackend struct {
	BackendType string `json:"backend_type"`
	BackendPath string `json:"backend_path"`
}

// NetworkOverride gives a restored interface another TAP.
type NetworkOverride struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
}

// VsockOverride gives a restored vsock device another socket path.
type VsockOverride struct {
	UDSPath string `json:"uds_path"`
}

// SnapshotLoad is the body of PUT /snapshot/load.
type SnapshotLoad struct {
	SnapshotPath        string            `json:"snapshot_path"`
	MemFilePath         string            `json:"mem_file_path,omitempty"`
	MemBackend          *MemBackend       `json:"mem_backend,omitempty"`
	EnableDiffSnapshots bool              `json:"enable_diff_snapshots,omitempty"`
	TrackDirtyPages     bool              `json:"track_dirty_pages,omitempty"`
	ResumeVM            bool              `json:"resume_vm,omitempty"`
	NetworkOverrides    []NetworkOverride `json:"network_overrides,omitempty"`
	VsockOverride       *VsockOverride    `json:"vsock_override,omitempty"`
	ClockRealtime       bool              `json:"clock_realtime,omitempty"`
}

// Action is the body of PUT /actions.
type Action struct {
	ActionType string `json:"action_type"`
}

// InstanceInfo answers GET /.
type InstanceInfo struct {
	AppName    string `json:"app_name"`
	ID         string `json:"id"`
	State      string `json:"state"`
	VMMVersion string `json:"vmm_version"`
}

// FullConfig is Firecracker's whole-VM configuration: the body of GET
// /vm/config and the file of --config-file, with kebab-case keys.
type FullConfig struct {
	Balloon           *Balloon           `json:"balloon,omitempty"`
	Drives            []Drive            `json:"drives"`
	BootSource        *BootSource        `json:"boot-source,omitempty"`
	CPUConfig         json.RawMessage    `json:"cpu-config,omitempty"` // a custom CPU template, or in a file the path of one
	Logger            *Logger            `json:"logger,omitempty"`
	MachineConfig     *MachineConfig     `json:"machine-config,omitempty"`
	Metrics           *Metrics           `json:"metrics,omitempty"`
	MemoryHotplug     any                `json:"memory-hotplug,omitempty"`
	MMDSConfig        *MMDSConfig        `json:"mmds-config,omitempty"`
	NetworkInterfaces []NetworkInterface `json:"network-interfaces"`
	Pmem              []any              `json:"pmem,omitempty"`
	Vsock             *Vsock             `json:"vsock,omitempty"`
	Entropy           *Entropy           `json:"entropy,omitempty"`
	Serial            *Serial            `json:"serial,omitempty"`
}
