package gptq

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"

	"github.com/autoq/autoq/internal/atomicfile"
)

// Hessian file format, version 1, little-endian:
//
//	offset 0   magic "AQHS"
//	       4   uint32 version (1)
//	       8   uint32 K
//	      12   uint32 reserved (0)
//	      16   int64  token count
//	      24   K*(K+1)/2 float64: the upper triangle of the sum, row by row (i <= j)
//	     end   uint32 CRC-32 (IEEE) of every byte before it
//
// Only the sums are stored (not the mean), so loaded shards still merge exactly.
const (
	hessianMagic   = "AQHS"
	hessianVersion = 1
	hessianHeader  = 24
)

// MarshalBinary encodes h in the version-1 file format.
func (h *Hessian) MarshalBinary() ([]byte, error) {
	k := h.K
	n := k * (k + 1) / 2
	buf := make([]byte, hessianHeader+8*n+4)
	copy(buf, hessianMagic)
	binary.LittleEndian.PutUint32(buf[4:], hessianVersion)
	binary.LittleEndian.PutUint32(buf[8:], uint32(k))
	binary.LittleEndian.PutUint64(buf[16:], uint64(h.Tokens))
	off := hessianHeader
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			binary.LittleEndian.PutUint64(buf[off:], math.Float64bits(h.Sum[i*k+j]))
			off += 8
		}
	}
	binary.LittleEndian.PutUint32(buf[off:], crc32.ChecksumIEEE(buf[:off]))
	return buf, nil
}

// UnmarshalBinary decodes the version-1 file format, checking the size and checksum.
func (h *Hessian) UnmarshalBinary(b []byte) error {
	if len(b) < hessianHeader+4 {
		return fmt.Errorf("hessian: truncated: %d bytes, header needs %d", len(b), hessianHeader+4)
	}
	if string(b[:4]) != hessianMagic {
		return fmt.Errorf("hessian: bad magic %q (want %q)", b[:4], hessianMagic)
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != hessianVersion {
		return fmt.Errorf("hessian: unsupported version %d (this build reads %d)", v, hessianVersion)
	}
	if r := binary.LittleEndian.Uint32(b[12:]); r != 0 {
		return fmt.Errorf("hessian: reserved header field is %d, want 0", r)
	}
	k := int(binary.LittleEndian.Uint32(b[8:]))
	if k <= 0 || k > 1<<20 {
		return fmt.Errorf("hessian: implausible width %d", k)
	}
	n := k * (k + 1) / 2
	want := hessianHeader + 8*n + 4
	if len(b) != want {
		return fmt.Errorf("hessian: width %d needs %d bytes, file has %d (truncated or trailing data)", k, want, len(b))
	}
	end := want - 4
	if got, sum := binary.LittleEndian.Uint32(b[end:]), crc32.ChecksumIEEE(b[:end]); got != sum {
		return fmt.Errorf("hessian: checksum mismatch (stored %08x, computed %08x): file is corrupt", got, sum)
	}
	tokens := int64(binary.LittleEndian.Uint64(b[16:]))
	if tokens < 0 {
		return fmt.Errorf("hessian: negative token count %d", tokens)
	}
	sum := make([]float64, k*k)
	off := hessianHeader
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			v := math.Float64frombits(binary.LittleEndian.Uint64(b[off:]))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("hessian: non-finite entry at (%d, %d)", i, j)
			}
			sum[i*k+j] = v
			off += 8
		}
	}
	*h = Hessian{K: k, Tokens: tokens, Sum: sum}
	return nil
}

// Save writes h to path atomically.
func (h *Hessian) Save(path string) error {
	b, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("hessian: save %s: %w", path, err)
	}
	return nil
}

// LoadHessian reads a file written by Save.
func LoadHessian(path string) (*Hessian, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hessian: %w", err)
	}
	h := new(Hessian)
	if err := h.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}
