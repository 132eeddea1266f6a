package block

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio"
	"golang.org/x/sys/unix"
)

// specCfgCapacity is the offset of le64 capacity in struct
// virtio_blk_config (virtio 1.2, 5.2.4).
const specCfgCapacity = 0

func readCapacity(d *Device) uint64 {
	var b [8]byte
	d.ReadConfig(specCfgCapacity, b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// wantConfigChange waits for the configuration change interrupt.
func (h *harness) wantConfigChange() {
	h.t.Helper()
	select {
	case r := <-h.irq.signals:
		if r != virtio.InterruptConfigChange {
			h.t.Fatalf("interrupt reason %d, want configuration change", r)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatal("no configuration change interrupt")
	}
}

func TestSwapImageNewSizeAndData(t *testing.T) {
	oldPath, _ := image(t, 8)
	h := newHarness(t, Config{Path: oldPath}, allFeatures)
	h.wantStatus("read before the swap", h.do(specTIn, 0, nil, specSector), specSOK)

	newPath, newData := image(t, 24)
	newData[0] = 0x5a // tell the two images apart
	if err := os.WriteFile(newPath, newData, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.dev.SwapImage(newPath); err != nil {
		t.Fatal(err)
	}
	h.wantConfigChange()
	if got := readCapacity(h.dev); got != 24 {
		t.Errorf("config space capacity %d sectors after the swap, want 24", got)
	}
	if got := h.dev.State(); got.Path != newPath || got.Capacity != 24 {
		t.Errorf("State after the swap: %+v", got)
	}
	r := h.do(specTIn, 20, nil, specSector) // past the old image's end
	h.wantStatus("read past the old size", r, specSOK)
	if !bytes.Equal(r.data, newData[20*specSector:21*specSector]) {
		t.Error("sector 20 is not the new image's")
	}
	r = h.do(specTIn, 0, nil, specSector)
	if r.data[0] != 0x5a {
		t.Errorf("sector 0 starts %#x, want the new image's 0x5a", r.data[0])
	}
	// Writes go to the new image, and the old one holds no lock now.
	h.wantStatus("write", h.do(specTOut, 1, bytes.Repeat([]byte{0xc3}, specSector), 0), specSOK)
	if got := fileBytes(t, newPath)[specSector]; got != 0xc3 {
		t.Errorf("the write did not reach the new image (%#x)", got)
	}
	if err := flockNB(t, oldPath, unix.LOCK_EX); err != nil {
		t.Errorf("the old image is still locked after the swap: %v", err)
	}
	if err := flockNB(t, newPath, unix.LOCK_SH); err == nil {
		t.Error("the new image of a read-write disk is not locked exclusively")
	}
}

func TestSwapImageBeforeActivationNoInterrupt(t *testing.T) {
	oldPath, _ := image(t, 8)
	dev, err := New(Config{Path: oldPath})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	newPath, _ := image(t, 16)
	if err := dev.SwapImage(newPath); err != nil {
		t.Fatal(err)
	}
	if got := readCapacity(dev); got != 16 {
		t.Errorf("capacity %d, want 16", got)
	}
}

func TestSwapImageSamePathGrown(t *testing.T) {
	path, data := image(t, 8)
	h := newHarness(t, Config{Path: path}, allFeatures)
	h.wantStatus("read", h.do(specTIn, 0, nil, specSector), specSOK)
	if err := os.WriteFile(path, append(data, make([]byte, 8*specSector)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.dev.SwapImage(path); err != nil {
		t.Fatalf("swap to the same, grown image: %v", err)
	}
	h.wantConfigChange()
	if got := readCapacity(h.dev); got != 16 {
		t.Errorf("capacity %d after growing to 16 sectors", got)
	}
	if err := flockNB(t, path, unix.LOCK_SH); err == nil {
		t.Error("the image lost its exclusive lock when swapped for itself")
	}
}

func TestSwapImageRefusals(t *testing.T) {
	oldPath, _ := image(t, 8)
	h := newHarness(t, Config{Path: oldPath}, allFeatures)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(dir, "odd")
	if err := os.WriteFile(odd, make([]byte, 700), 0o600); err != nil {
		t.Fatal(err)
	}
	locked, _ := image(t, 4)
	holder, err := os.Open(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		want       error
	}{
		{"missing file", filepath.Join(dir, "missing"), os.ErrNotExist},
		{"FIFO", fifo, ErrBadConfig},
		{"directory", dir, ErrBadConfig},
		{"not whole sectors", odd, ErrBadConfig},
		{"locked by another", locked, ErrLocked},
		{"empty path", "", ErrBadConfig},
	} {
		err := h.dev.SwapImage(tc.path)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// After the refusals the disk still serves its image.
	if st := h.dev.State(); st.Capacity != 8 || st.Path != oldPath {
		t.Errorf("state after refused swaps: %+v", st)
	}
	h.wantStatus("read after refused swaps", h.do(specTIn, 7, nil, specSector), specSOK)
}

func TestSwapImageReadOnlyStays(t *testing.T) {
	oldPath, _ := image(t, 8)
	h := newHarness(t, Config{Path: oldPath, ReadOnly: true}, allFeatures|specFRO)
	h.wantStatus("read before the swap", h.do(specTIn, 0, nil, specSector), specSOK)
	newPath, _ := image(t, 8)
	if err := os.Chmod(newPath, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := h.dev.SwapImage(newPath); err != nil {
		t.Fatalf("swap a read-only disk to a read-only file: %v", err)
	}
	h.wantConfigChange()
	h.wantStatus("write to the swapped read-only disk", h.do(specTOut, 0, make([]byte, specSector), 0), specSIOErr)
	if err := flockNB(t, newPath, unix.LOCK_SH); err != nil {
		t.Errorf("a read-only disk's new image must allow other shared locks: %v", err)
	}
	if err := flockNB(t, newPath, unix.LOCK_EX); err == nil {
		t.Error("a read-only disk's new image holds no shared lock")
	}
}

func TestSwapImageRefusedDuringWriteLog(t *testing.T) {
	oldPath, _ := image(t, 8)
	dev, err := New(Config{Path: oldPath})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	dev.StartWriteLog()
	newPath, _ := image(t, 8)
	if err := dev.SwapImage(newPath); !errors.Is(err, ErrWriteLogOn) {
		t.Fatalf("swap during a write log: %v, want ErrWriteLogOn", err)
	}
}

func TestSwapImageClosed(t *testing.T) {
	oldPath, _ := image(t, 8)
	dev, err := New(Config{Path: oldPath})
	if err != nil {
		t.Fatal(err)
	}
	dev.Close()
	newPath, _ := image(t, 8)
	if err := dev.SwapImage(newPath); !errors.Is(err, ErrClosed) {
		t.Fatalf("swap of a closed disk: %v", err)
	}
	if err := flockNB(t, newPath, unix.LOCK_EX); err != nil {
		t.Errorf("a refused swap left the new image locked: %v", err)
	}
}

// TestSwapImageUnderLoad swaps between two images while the device serves
// reads: every read completes with OK and returns one image's sector
// whole, never an error from a closed file.
func TestSwapImageUnderLoad(t *testing.T) {
	a, aData := image(t, 8)
	b, bData := image(t, 8)
	for i := range bData {
		bData[i] ^= 0xff
	}
	if err := os.WriteFile(b, bData, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Config{Path: a}, allFeatures)
	// One swap per read, started as the read is (the hand-over of the
	// token), running beside it; one at a time, so that the fake's
	// interrupt channel never fills.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	token := make(chan struct{})
	wg.Add(1)
	swaps := 0
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-token:
			}
			p := a
			if i%2 == 0 {
				p = b
			}
			if err := h.dev.SwapImage(p); err != nil {
				t.Errorf("swap %d: %v", i, err)
				return
			}
			swaps++
		}
	}()
	// 80 reads of three descriptors each fit the harness's table.
	for i := 0; i < 80; i++ {
		sector := uint64(i % 8)
		select {
		case token <- struct{}{}:
		case <-time.After(5 * time.Second):
			t.Fatal("the swapping goroutine stopped taking turns")
		}
		r := h.doSkippingConfig(specTIn, sector, specSector)
		if r.status != specSOK {
			close(stop)
			wg.Wait()
			t.Fatalf("read %d during swaps: status %d", i, r.status)
		}
		want := [][]byte{aData[sector*specSector : (sector+1)*specSector], bData[sector*specSector : (sector+1)*specSector]}
		if !bytes.Equal(r.data, want[0]) && !bytes.Equal(r.data, want[1]) {
			close(stop)
			wg.Wait()
			t.Fatalf("read %d: sector %d is neither image's", i, sector)
		}
	}
	close(stop)
	wg.Wait()
	if swaps == 0 {
		t.Fatal("no swap happened during the reads")
	}
}

// doSkippingConfig is do for a read, taking configuration change
// interrupts in stride.
func (h *harness) doSkippingConfig(typ uint32, sector uint64, outLen uint32) result {
	h.t.Helper()
	for len(h.irq.signals) > 0 {
		<-h.irq.signals
	}
	want := h.drv.UsedIdx() + 1
	o, st := h.out(outLen), h.out(1)
	head := h.publish(h.in(header(typ, sector)), o, st)
	deadline := time.After(5 * time.Second)
	for h.drv.UsedIdx() != want {
		select {
		case <-h.irq.signals:
		case err := <-h.irq.resets:
			h.t.Fatalf("device needs reset: %v", err)
		case <-deadline:
			h.t.Fatal("request not completed within 5s")
		}
	}
	id, used := h.drv.UsedElem(want - 1)
	if id != uint32(head) {
		h.t.Fatalf("used id %d, want head %d", id, head)
	}
	return result{status: h.segBytes(st)[0], data: bytes.Clone(h.segBytes(o)), used: used}
}

// flockNB tries a lock of kind how on path through a descriptor of its
// own, as another process would, and releases it at once.
func flockNB(t *testing.T, path string, how int) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// A paused VM's devices are stopped (Reset) and started again (Activate)
// on resume: a swap in between is signalled then.
func TestSwapImageWhileStoppedSignalsOnActivation(t *testing.T) {
	oldPath, _ := image(t, 8)
	h := newHarness(t, Config{Path: oldPath}, allFeatures)
	h.wantStatus("read", h.do(specTIn, 0, nil, specSector), specSOK)
	h.dev.Reset()
	newPath, _ := image(t, 16)
	if err := h.dev.SwapImage(newPath); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-h.irq.signals:
		t.Fatalf("a stopped device signalled %d", r)
	default:
	}
	if err := h.dev.Activate(h.mem, h.queues(), h.irq, h.acked); err != nil {
		t.Fatal(err)
	}
	h.wantConfigChange()
	if got := readCapacity(h.dev); got != 16 {
		t.Errorf("capacity %d, want 16", got)
	}
}
