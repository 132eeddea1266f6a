package devices

// Trigger raises one edge on a device's interrupt line. The VMM backs it
// with an irqfd, so it is cheap and never blocks; an error means the edge
// was lost.
type Trigger interface {
	Trigger() error
}
