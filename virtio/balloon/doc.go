// Package balloon implements the virtio memory balloon device (device ID 5,
// virtio 1.2 section 5.5).
//
// The host sets a target size for the balloon; the guest driver inflates
// the balloon towards it by handing page frame numbers (always 4 KiB
// frames, whatever the guest's page size) to the device on the inflate
// queue, and takes pages back on the deflate queue when the target drops.
// Inflated pages are returned to the host through the release function the
// VMM supplies, normally ReleaseWithMadvise, which drops their backing with
// madvise(MADV_DONTNEED): the host memory is freed at once and a later
// guest access faults in a fresh zero page. Deflation therefore needs no
// host work.
//
// VIRTIO_BALLOON_F_MUST_TELL_HOST is not offered, so the driver may reuse a
// page before it reports the deflation; that is safe for the same reason.
// When a statistics interval is configured the device also offers the
// statistics queue: it keeps the buffer of (tag, value) pairs the driver
// posts and returns it after the interval to ask for the next update.
//
// The driver is untrusted: every PFN is checked against guest RAM, every
// read is bounded, and a malformed ring asks the transport for a reset
// rather than disturbing the VMM.
package balloon
