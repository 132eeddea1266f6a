package devices

// byteFIFO is a fixed-capacity ring of bytes; it never allocates.
type byteFIFO struct {
	buf  [SerialInputCapacity]byte
	head int // index of the oldest byte
	n    int
}

func (f *byteFIFO) len() int  { return f.n }
func (f *byteFIFO) free() int { return len(f.buf) - f.n }
func (f *byteFIFO) reset()    { f.head, f.n = 0, 0 }

// push appends as much of p as fits and returns how much that was.
func (f *byteFIFO) push(p []byte) int {
	k := min(len(p), f.free())
	for _, c := range p[:k] {
		f.buf[(f.head+f.n)%len(f.buf)] = c
		f.n++
	}
	return k
}

// pop removes the oldest byte; ok is false when the FIFO is empty.
func (f *byteFIFO) pop() (c byte, ok bool) {
	if f.n == 0 {
		return 0, false
	}
	c = f.buf[f.head]
	f.head = (f.head + 1) % len(f.buf)
	f.n--
	return c, true
}

// contents returns a copy of the queued bytes, oldest first.
func (f *byteFIFO) contents() []byte {
	out := make([]byte, f.n)
	for i := range out {
		out[i] = f.buf[(f.head+i)%len(f.buf)]
	}
	return out
}
