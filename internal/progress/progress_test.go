package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A bar on a non-terminal writer stays silent, so logs and pipes get no control characters.
func TestBarSilentOnNonTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "work", 10, "items")
	for i := 0; i < 10; i++ {
		b.Add(1)
	}
	b.Done()
	assert.Empty(t, buf.String())
	var nilBar *Bar
	nilBar.Add(1) // a nil bar is a no-op
	nilBar.Done()
}

func TestBarDrawsPercentAndRate(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "quantize", 4, "tensors")
	b.enabled = true // as on a terminal
	b.Add(4)
	b.Done()
	out := buf.String()
	assert.Contains(t, out, "quantize")
	assert.Contains(t, out, "100%")
	assert.Contains(t, out, "4/4 tensors")
	assert.Contains(t, out, "ETA done")
	assert.True(t, strings.HasSuffix(out, "\n"))
}

// The ETA is the remaining units at the rate so far; the label can change mid-way.
func TestBarETAAndLabel(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "calibrate", 10, "blocks")
	b.enabled = true
	b.start = b.start.Add(-4 * time.Second) // 2 blocks in 4 s: 8 left at 0.5/s
	b.SetLabel("calibrate block 3/10")
	b.Add(2)
	out := buf.String()
	assert.Contains(t, out, "calibrate block 3/10")
	assert.Regexp(t, `ETA 1[5-6]s`, out)
	assert.Equal(t, "1h02m", FormatETA(3725))
	assert.Equal(t, "3m04s", FormatETA(184))
	assert.Equal(t, "9s", FormatETA(9.4))
}
