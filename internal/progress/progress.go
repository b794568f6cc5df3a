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
		fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%% %d/%d %s (%.3g %s/s)   ", b.label, strings.Repeat("=", n), strings.Repeat(" ", 30-n), frac*100, b.done, b.total, b.unit, rate, b.unit)
	} else {
		fmt.Fprintf(b.w, "\r%s %d %s (%.3g %s/s)   ", b.label, b.done, b.unit, rate, b.unit)
	}
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
