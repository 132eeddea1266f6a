package block

import "encoding/binary"

// features are the device-type feature bits a disk offers.
func features(readOnly bool) uint64 {
	f := uint64(FeatureSegMax | FeatureBlkSize | FeatureFlush)
	if readOnly {
		return f | FeatureRO
	}
	return f | FeatureDiscard | FeatureWriteZeroes
}

// configSpace lays out struct virtio_blk_config. Fields of features the
// disk does not offer, and the padding, stay zero as the specification
// requires of unused0 and unused1.
func configSpace(capacity uint64, readOnly bool) [configSize]byte {
	var c [configSize]byte
	le := binary.LittleEndian
	le.PutUint64(c[cfgCapacity:], capacity)
	le.PutUint32(c[cfgSegMax:], SegMax)
	le.PutUint32(c[cfgBlkSize:], SectorSize)
	if !readOnly {
		le.PutUint32(c[cfgMaxDiscardSectors:], MaxDiscardSectors)
		le.PutUint32(c[cfgMaxDiscardSeg:], MaxDiscardSeg)
		le.PutUint32(c[cfgDiscardSectorAlignment:], DiscardSectorAlignment)
		le.PutUint32(c[cfgMaxWriteZeroesSectors:], MaxWriteZeroesSectors)
		le.PutUint32(c[cfgMaxWriteZeroesSeg:], MaxWriteZeroesSeg)
		// Write-zeroes with unmap punches a hole.
		c[cfgWriteZeroesMayUnmap] = 1
	}
	return c
}

// ReadConfig reads the device configuration space; only SwapImage changes
// it (the capacity).
func (d *Device) ReadConfig(offset uint64, data []byte) {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	if offset >= uint64(len(d.config)) {
		return
	}
	copy(data, d.config[offset:])
}

// WriteConfig ignores the write: without VIRTIO_BLK_F_CONFIG_WCE every
// field is read-only.
func (d *Device) WriteConfig(offset uint64, data []byte) {}
