package eval

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckData(t *testing.T) {
	assert.NoError(t, CheckData(writeFile(t, "ok.txt", "Once upon a time.\n\nThe end. â€™ déjà vu\n"), 0))
	assert.NoError(t, CheckData(writeFile(t, "ok.jsonl", "[1, 2, 3]\n\n[1, 9]\n"), 10))
	assert.ErrorContains(t, CheckData(writeFile(t, "bin.txt", "text\x00\xff\xfe\x01"), 0), "not UTF-8 text (invalid byte 0xff at offset 5)")
	ctrl := strings.Repeat("\x01\x02\x03", 20) + "abc"
	assert.ErrorContains(t, CheckData(writeFile(t, "ctrl.txt", ctrl), 0), "does not look like text: only 5% of its first 63 characters are printable")
	assert.ErrorContains(t, CheckData(writeFile(t, "empty.txt", ""), 0), "is empty")
	assert.ErrorContains(t, CheckData(writeFile(t, "big.jsonl", "[1, 2]\n[1, 2, 10]\n"), 10), "line 2: token 2 is id 10, outside the model's vocabulary [0, 10)")
	assert.ErrorContains(t, CheckData(writeFile(t, "neg.jsonl", "[-1]\n"), 0), "line 1: token 0 is id -1")
	assert.ErrorContains(t, CheckData(writeFile(t, "text.jsonl", "hello\n"), 10), "line 1: want a JSON array of token ids")
	assert.ErrorContains(t, CheckData(writeFile(t, "none.jsonl", "\n\n"), 10), "holds no token ids")
	assert.ErrorContains(t, CheckData(filepath.Join(t.TempDir(), "missing.txt"), 0), "no such file")
	// A multi-byte character cut by the sniff limit is not an encoding error.
	long := strings.Repeat("a", textSniffBytes-1) + "é and more"
	assert.NoError(t, CheckData(writeFile(t, "long.txt", long), 0))
}
