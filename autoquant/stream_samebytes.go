package autoquant

import (
	"bytes"
	"os"

	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/safetensors"
)

// sameBytes reports whether the export's tensor name (a) equals the source's (b). When both
// lie in safetensors files it reads them from the files a piece at a time rather than
// through their mappings, which would fault both tensors into the resident set.
func (p *pipeline) sameBytes(r *export.Reader, name string, a, b []byte) bool {
	sa, okA := r.Section(name)
	var sb safetensors.Section
	okB := false
	if p.src.ck != nil {
		sb, okB = p.src.ck.Section(name)
	}
	if !okA || !okB || sa.Size != int64(len(a)) || sb.Size != int64(len(b)) {
		return bytes.Equal(a, b)
	}
	same, err := sameFileBytes(sa, sb)
	if err != nil { // the mappings still work
		return bytes.Equal(a, b)
	}
	return same
}

// sameFileBytes compares two equally long sections of files, 1 MiB at a time.
func sameFileBytes(a, b safetensors.Section) (bool, error) {
	fa, err := os.Open(a.Path)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b.Path)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	const piece = 1 << 20
	ba, bb := make([]byte, piece), make([]byte, piece)
	for off := int64(0); off < a.Size; off += piece {
		n := min(piece, a.Size-off)
		if _, err := fa.ReadAt(ba[:n], a.Offset+off); err != nil {
			return false, err
		}
		if _, err := fb.ReadAt(bb[:n], b.Offset+off); err != nil {
			return false, err
		}
		if !bytes.Equal(ba[:n], bb[:n]) {
			return false, nil
		}
	}
	return true, nil
}
