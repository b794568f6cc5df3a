package gptq

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
)

// FuzzUnmarshalHessian: any bytes (as they are, or with their CRC fixed up so that fuzzing
// gets past the checksum) give a Hessian or a "hessian: " error; an accepted file is exactly
// what MarshalBinary writes for the decoded Hessian. Regressions found by fuzzing live in
// testdata/fuzz/FuzzUnmarshalHessian. Run with
// `go test -run '^$' -fuzz '^FuzzUnmarshalHessian$' -parallel 1 ./gptq`.
func FuzzUnmarshalHessian(f *testing.F) {
	for _, k := range []int{1, 3} {
		h, err := NewHessian(k)
		if err != nil {
			f.Fatal(err)
		}
		x := make([]float32, 2*k)
		for i := range x {
			x[i] = float32(i) - 1.5
		}
		if err := h.Add(x, 2, k); err != nil {
			f.Fatal(err)
		}
		b, err := h.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b[:len(b)-5], true)
	}
	f.Add([]byte("AQHS\x01\x00\x00\x00\xff\xff\xff\xff"), true)
	f.Add([]byte("AQHS\x02\x00\x00\x00"), false)
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		if fixCRC && len(b) >= 4 {
			b = append([]byte(nil), b...)
			binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
		}
		var h Hessian
		if err := h.UnmarshalBinary(b); err != nil {
			if !strings.HasPrefix(err.Error(), "hessian: ") {
				t.Fatalf("error does not say what was read: %v", err)
			}
			return
		}
		if len(h.Sum) != h.K*h.K || h.Tokens < 0 {
			t.Fatalf("accepted K %d with %d sums and %d tokens", h.K, len(h.Sum), h.Tokens)
		}
		out, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted Hessian does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("accepted file is not what MarshalBinary writes for its contents")
		}
	})
}
