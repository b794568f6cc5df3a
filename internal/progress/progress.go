package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar is a progress bar for total units of work. The zero of total means unknown.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	label   string
	unit    string
	total   int64
	done    int64
	start   time.Time
	last    time.Time
	enabled bool
}

// New returns a bar writing to w, enabled only if w is a terminal (a *os.File that is a
// character device) and AUTOQ_NO_PROGRESS is unset.
func New(w io.Writer, label string, total int64, unit string) *Bar {
	b := &Bar{w: w, label: label, unit: unit, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok && os.Getenv("AUTOQ_NO_PROGRESS") == "" {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.enabled = true
		}
	}
	return b
}

// Add records n more units done and redraws at most ten times a second.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if !b.enabled {
		return
	}
	now := time.Now()
	if now.Sub(b.last) < 100*time.Millisecond && b.done < b.total {
		return
	}
	b.last = now
	b.draw(now)
}

func (b *Bar) draw(now time.Time) {
	el := now.Sub(b.start).Seconds()
	rate := float64(b.done) / maxf(el, 1e-9)
	if b.total > 0 {
		frac := float64(b.done) / float64(b.total)
		if frac > 1 {
			frac = 1
		}
		n := int(frac * 30)
		eta := "--"
		if b.done > 0 && b.done < b.total {
			eta = FormatETA((float64(b.total-b.done) / rate))
		} else if b.done >= b.total {
			eta = "done"
		}
		fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%% %d/%d %s (%.3g %s/s, ETA %s)   ", b.label, strings.Repeat("=", n), strings.Repeat(" ", 30-n), frac*100, b.done, b.total, b.unit, rate, b.unit, eta)
	} else {
		fmt.Fprintf(b.w, "\r%s %d %s (%.3g %s/s)   ", b.label, b.done, b.unit, rate, b.unit)
	}
}

// SetLabel changes the label (e.g. to the block being worked on).
func (b *Bar) SetLabel(label string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.label = label
	b.mu.Unlock()
}

// FormatETA writes a remaining time as 1h02m, 3m04s or 12s.
func FormatETA(sec float64) string {
	s := int(sec + 0.5)
	switch {
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	case s >= 60:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%ds", s)
}

// Done finishes the line.
func (b *Bar) Done() {
	if b == nil || !b.enabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(time.Now())
	fmt.Fprintln(b.w)
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}
