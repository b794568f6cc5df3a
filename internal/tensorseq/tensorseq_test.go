package tensorseq

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeqOrderAndEnd(t *testing.T) {
	s := New("fmt", "f.bin", []string{"a", "b"})
	_, err := s.Next("Write", "b")
	assert.EqualError(t, err, `fmt: f.bin: tensor "b" written out of order (expected "a" next)`)
	i, err := s.Next("Write", "a")
	require.NoError(t, err)
	assert.Equal(t, 0, i)
	s.Written()
	assert.EqualError(t, s.Missing(), `fmt: f.bin: closed after 1 of 2 tensors (next: "b"); nothing written`)
	i, err = s.Next("Write", "b")
	require.NoError(t, err)
	assert.Equal(t, 1, i)
	s.Written()
	assert.NoError(t, s.Missing())
	_, err = s.Next("Write", "c")
	assert.EqualError(t, err, `fmt: f.bin: tensor "c": all 2 declared tensors already written`)
	assert.True(t, s.End())
	assert.False(t, s.End())
	assert.True(t, s.Done())
	_, err = s.Next("Write", "a")
	assert.EqualError(t, err, `fmt: f.bin: Write("a") after Close or Abort`)
}
