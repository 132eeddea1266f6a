package balloon

import (
	"time"

	"github.com/ternvm/tern/virtio"
)

// takeStats records the statistics in c and keeps c, to return it when the
// next update is due (virtio 1.2 5.5.6.3). A driver keeps one buffer in
// flight; if it posts another, the older one goes back at once so that no
// buffer is lost.
func (w *worker) takeStats(c *virtio.Chain) bool {
	n := min(c.ReadableLen(), MaxStatsEntries*statEntrySize)
	buf := make([]byte, n)
	if _, err := c.ReadAt(w.mem, buf, 0); err != nil {
		buf = nil // Pop checked the buffers; keep the previous values
	}
	if w.statsHeld {
		if err := w.queues[QueueStats].AddUsed(w.mem, w.statsHead, 0); err != nil {
			w.fail(QueueStats, err)
			return false
		}
		defer w.notify(QueueStats)
	}
	w.statsHeld, w.statsHead = true, c.Head
	w.d.mu.Lock()
	if buf != nil {
		w.d.stats = parseStats(buf)
		w.d.counters.StatsUpdates++
	}
	w.d.statsHeld, w.d.statsHead = true, c.Head
	w.d.mu.Unlock()
	w.armStats()
	return false
}

// armStats (re)starts the wait before the held buffer goes back.
func (w *worker) armStats() {
	if w.statsTimer == nil {
		w.statsTimer = time.NewTimer(w.interval)
		return
	}
	w.statsTimer.Reset(w.interval)
}

// returnStats gives the held buffer back, which asks the driver for the
// next update.
func (w *worker) returnStats() {
	q := w.queues[QueueStats]
	if !w.statsHeld || q == nil || w.broken[QueueStats] {
		return
	}
	if err := q.AddUsed(w.mem, w.statsHead, 0); err != nil {
		w.fail(QueueStats, err)
		return
	}
	w.statsHeld = false
	w.d.mu.Lock()
	w.d.statsHeld = false
	w.d.mu.Unlock()
	w.notify(QueueStats)
}
