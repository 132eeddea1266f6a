package balloon

// Feature bits of the balloon device (virtio 1.2 section 5.5.3).
const (
	// FeatureMustTellHost (VIRTIO_BALLOON_F_MUST_TELL_HOST) is never
	// offered: the host does nothing on deflate, so the driver need not
	// wait for it.
	FeatureMustTellHost = 1 << 0
	// FeatureStatsVQ (VIRTIO_BALLOON_F_STATS_VQ): the statistics queue
	// exists.
	FeatureStatsVQ = 1 << 1
	// FeatureDeflateOnOOM (VIRTIO_BALLOON_F_DEFLATE_ON_OOM): the driver
	// may deflate the balloon when the guest runs out of memory.
	FeatureDeflateOnOOM = 1 << 2
)

// Queue indices (virtio 1.2 section 5.5.2). The statistics queue exists
// only when FeatureStatsVQ is offered.
const (
	QueueInflate = 0
	QueueDeflate = 1
	QueueStats   = 2
)

// QueueSize is the largest size of each queue.
const QueueSize = 256

// PageSize is the size of the frames the balloon protocol counts in:
// PFNs are guest physical addresses shifted right by PFNShift
// (VIRTIO_BALLOON_PFN_SHIFT), whatever the guest's own page size.
const (
	PFNShift = 12
	PageSize = 1 << PFNShift
)

// pagesPerMiB converts a target in MiB to balloon pages.
const pagesPerMiB = (1 << 20) / PageSize

// Configuration space layout (struct virtio_balloon_config). The free page
// hint and poison fields that follow exist only with features this device
// does not offer, so the space ends after actual.
const (
	configNumPages = 0 // le32, written by the device
	configActual   = 4 // le32, written by the driver
	configSize     = 8
)

// MaxPFNsPerChain bounds how many PFNs of one inflate or deflate chain the
// device acts on; Linux sends at most 256 per chain. The rest of a longer
// chain is skipped and counted.
const MaxPFNsPerChain = 4096

// pfnSize is the size of one PFN in an inflate or deflate buffer (le32).
const pfnSize = 4
