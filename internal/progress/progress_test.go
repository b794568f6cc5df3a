package progress

import (
	"bytes"
	"strings"
	"testing"

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
	assert.True(t, strings.HasSuffix(out, "\n"))
}
