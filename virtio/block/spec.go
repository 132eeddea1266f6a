package block

// Feature bits of the block device that this device offers (virtio 1.2
// 5.2.3); it offers neither SIZE_MAX, GEOMETRY, TOPOLOGY, CONFIG_WCE nor MQ.
const (
	FeatureSegMax      = 1 << 2  // VIRTIO_BLK_F_SEG_MAX
	FeatureRO          = 1 << 5  // VIRTIO_BLK_F_RO
	FeatureBlkSize     = 1 << 6  // VIRTIO_BLK_F_BLK_SIZE
	FeatureFlush       = 1 << 9  // VIRTIO_BLK_F_FLUSH
	FeatureDiscard     = 1 << 13 // VIRTIO_BLK_F_DISCARD
	FeatureWriteZeroes = 1 << 14 // VIRTIO_BLK_F_WRITE_ZEROES
)

// Request types (virtio 1.2 5.2.6).
const (
	RequestIn          = 0  // VIRTIO_BLK_T_IN
	RequestOut         = 1  // VIRTIO_BLK_T_OUT
	RequestFlush       = 4  // VIRTIO_BLK_T_FLUSH
	RequestGetID       = 8  // VIRTIO_BLK_T_GET_ID
	RequestDiscard     = 11 // VIRTIO_BLK_T_DISCARD
	RequestWriteZeroes = 13 // VIRTIO_BLK_T_WRITE_ZEROES
)

// Request status values, the last byte of every request.
const (
	StatusOK     = 0 // VIRTIO_BLK_S_OK
	StatusIOErr  = 1 // VIRTIO_BLK_S_IOERR
	StatusUnsupp = 2 // VIRTIO_BLK_S_UNSUPP
)

// SectorSize is the unit of every sector number and count in the protocol,
// whatever blk_size says.
const SectorSize = 512

// IDLen is the size of the GET_ID answer: the serial, padded with NULs.
const IDLen = 20

// Request layout: struct virtio_blk_req starts with type (le32), reserved
// (le32) and sector (le64); the data follows and the status byte ends it.
const (
	headerLen = 16
	statusLen = 1
)

// struct virtio_blk_discard_write_zeroes: sector (le64), num_sectors
// (le32), flags (le32) whose bit 0 is unmap; the other bits are reserved.
const (
	segmentLen   = 16
	segmentUnmap = 1
)

// Offsets of the fields of struct virtio_blk_config (virtio 1.2 5.2.4).
const (
	cfgCapacity               = 0  // le64
	cfgSizeMax                = 8  // le32
	cfgSegMax                 = 12 // le32
	cfgBlkSize                = 20 // le32, after the 4-byte geometry at 16
	cfgMaxDiscardSectors      = 36 // le32, after topology (24), writeback (32), unused0 (33), num_queues (34)
	cfgMaxDiscardSeg          = 40 // le32
	cfgDiscardSectorAlignment = 44 // le32
	cfgMaxWriteZeroesSectors  = 48 // le32
	cfgMaxWriteZeroesSeg      = 52 // le32
	cfgWriteZeroesMayUnmap    = 56 // u8, then unused1[3]
	// configSize ends the space after unused1: the secure-erase and zoned
	// fields that follow belong to features this device does not offer.
	configSize = 60
)

// Limits the device advertises and enforces.
const (
	// QueueSize is the largest size of the request queue.
	QueueSize = 256
	// SegMax is the most data buffers in one request: the whole chain,
	// which may not exceed the queue size, less the header and status.
	SegMax = QueueSize - 2
	// MaxDiscardSectors and MaxWriteZeroesSectors bound one segment of a
	// discard or write-zeroes request (2 GiB).
	MaxDiscardSectors     = 1 << 22
	MaxWriteZeroesSectors = 1 << 22
	// MaxDiscardSeg and MaxWriteZeroesSeg bound the segments of one
	// request, and with them what the device reads for it.
	MaxDiscardSeg     = 32
	MaxWriteZeroesSeg = 32
	// DiscardSectorAlignment asks the driver for 4 KiB-aligned discards,
	// the block size of common host file systems: a smaller range can
	// only be zeroed, not deallocated.
	DiscardSectorAlignment = 8
)
