package quant

// Hand-computed cases for the 3-, 5-, 6- and 7-bit widths, in the style of handcases_test.go:
// every scale is 1 or 2, so the levels follow from doc.go's rules by mental arithmetic, and
// the packed bytes from qtensor.go's bit-stream rule (fields written out in the comments).

var widthCases = []handCase{
	{
		name: "int3 sym channel", s: Scheme{Bits: 3, Symmetric: true, Granularity: PerChannel},
		rows: 1, cols: 8,
		// amax 3.5 -> scale 3.5/3.5 = 1, range [-4, 3]. 3.5 -> 4 -> 3 (saturated); -3.5 -> -4;
		// 2.5 -> 2 (tie to even); 1.5 -> 2; -0.5 -> 0; -2.6 -> -3; 0.4 -> 0; -1.5 -> -2.
		w:      []float32{3.5, -3.5, 2.5, 1.5, -0.5, -2.6, 0.4, -1.5},
		scales: []float32{1},
		levels: []int32{3, -4, 2, 2, 0, -3, 0, -2},
		deq:    []float32{3, -4, 2, 2, 0, -3, 0, -2},
		// fields 011 100 010 010 000 101 000 110, element 0 lowest: the 24-bit word
		// 110 000 101 000 010 010 100 011 = 0xC284A3, little-endian.
		data: []byte{0xA3, 0x84, 0xC2},
	},
	{
		name: "int3 asym channel, padded rows", s: Scheme{Bits: 3, Granularity: PerChannel},
		rows: 2, cols: 5,
		// row 0: [-1, 6] -> scale 7/7 = 1, zero rne(1) = 1; -0.5 -> rne -0 + 1 = 1.
		// row 1: [0, 14] -> scale 2, zero 0; 3/2 = 1.5 -> 2, 7/2 = 3.5 -> 4, 5/2 = 2.5 -> 2.
		w:      []float32{-1, 6, 2.5, 0, -0.5, 14, 0, 3, 7, 5},
		scales: []float32{1, 2},
		zeros:  []int32{1, 0},
		levels: []int32{0, 7, 3, 1, 1, 7, 0, 2, 4, 2},
		deq:    []float32{-1, 6, 2, 0, 0, 14, 0, 4, 8, 4},
		// 15 bits a row -> 2 bytes. Row 0: 0 | 7<<3 | 3<<6 | 1<<9 | 1<<12 = 0x12F8;
		// row 1: 7 | 2<<6 | 4<<9 | 2<<12 = 0x2887.
		data: []byte{0xF8, 0x12, 0x87, 0x28},
	},
	{
		name: "int5 sym group 8", s: Scheme{Bits: 5, Symmetric: true, Granularity: PerGroup, GroupSize: 8},
		rows: 1, cols: 16,
		// range [-16, 15]. g0 amax 15.5 -> scale 1: 15.5 -> 16 -> 15, 10.5 -> 10, -7.5 -> -8.
		// g1 amax 31 -> scale 2: 31/2 = 15.5 -> 15, -15.5 -> -16, 2.5 -> 2, -1.5 -> -2,
		// 0.5 -> 0, 10, -4.5 -> -4, 0.
		w:      []float32{15.5, -15.5, 10.5, -7.5, 0.5, 3, -1, 14, 31, -31, 5, -3, 1, 20, -9, 0},
		scales: []float32{1, 2},
		levels: []int32{15, -16, 10, -8, 0, 3, -1, 14, 15, -16, 2, -2, 0, 10, -4, 0},
		deq:    []float32{15, -16, 10, -8, 0, 3, -1, 14, 30, -32, 4, -4, 0, 20, -8, 0},
		// each group of eight 5-bit levels fills exactly 5 bytes.
		data: []byte{0x0F, 0x2A, 0x0C, 0xC6, 0x77, 0x0F, 0x0A, 0x0F, 0x14, 0x07},
	},
	{
		name: "int5 asym channel", s: Scheme{Bits: 5, Granularity: PerChannel},
		rows: 1, cols: 8,
		// [-2, 29] -> scale 31/31 = 1, zero 2: 10.5 -> 10+2, 3.5 -> 4+2, -1.5 -> -2+2.
		w:      []float32{-2, 29, 0, 10.5, 3.5, -1.5, 7, 1},
		scales: []float32{1},
		zeros:  []int32{2},
		levels: []int32{0, 31, 2, 12, 6, 0, 9, 3},
		deq:    []float32{-2, 29, 0, 10, 4, -2, 7, 1},
		data:   []byte{0xE0, 0x0B, 0x66, 0x40, 0x1A},
	},
	{
		name: "int6 sym channel, padded row", s: Scheme{Bits: 6, Symmetric: true, Granularity: PerChannel},
		rows: 1, cols: 10,
		// amax 31.5 -> scale 1, range [-32, 31]: 31.5 -> 32 -> 31, 20.5 -> 20, -7.5 -> -8.
		w:      []float32{31.5, -31.5, 20.5, -0.5, 12, -7.5, 1.5, 30, -31, 5},
		scales: []float32{1},
		levels: []int32{31, -32, 20, 0, 12, -8, 2, 30, -31, 5},
		deq:    []float32{31, -32, 20, 0, 12, -8, 2, 30, -31, 5},
		// 60 bits -> 8 bytes, the last 4 bits zero.
		data: []byte{0x1F, 0x48, 0x01, 0x0C, 0x2E, 0x78, 0x61, 0x01},
	},
	{
		name: "int6 asym group 4", s: Scheme{Bits: 6, Granularity: PerGroup, GroupSize: 4},
		rows: 1, cols: 8,
		// g0 [-10, 53] -> scale 63/63 = 1, zero 10: 4.5 -> 4+10. g1 [0, 126] -> scale 2, zero
		// 0: 0.5 -> 0, 1.5 -> 2.
		w:      []float32{-10, 53, 0, 4.5, 126, 1, 3, 64},
		scales: []float32{1, 2},
		zeros:  []int32{10, 0},
		levels: []int32{0, 63, 10, 14, 63, 0, 2, 32},
		deq:    []float32{-10, 53, 0, 4, 126, 0, 4, 64},
		// groups of 4 six-bit levels are 3 bytes: group 1 starts on byte 3.
		data: []byte{0xC0, 0xAF, 0x38, 0x3F, 0x20, 0x80},
	},
	{
		name: "int7 sym tensor", s: Scheme{Bits: 7, Symmetric: true, Granularity: PerTensor},
		rows: 2, cols: 2,
		// amax 63.5 -> scale 1, range [-64, 63].
		w:      []float32{63.5, -63.5, 2.5, -40},
		scales: []float32{1},
		levels: []int32{63, -64, 2, -40},
		deq:    []float32{63, -64, 2, -40},
		data:   []byte{0x3F, 0x20, 0x02, 0x2C},
	},
	{
		name: "int7 asym channel", s: Scheme{Bits: 7, Granularity: PerChannel},
		rows: 1, cols: 4,
		// [-100, 27] -> scale 127/127 = 1, zero 100; -50.5 -> -50 (even) + 100.
		w:      []float32{-100, 27, 0, -50.5},
		scales: []float32{1},
		zeros:  []int32{100},
		levels: []int32{0, 127, 100, 50},
		deq:    []float32{-100, 27, 0, -50},
		data:   []byte{0x80, 0x3F, 0x59, 0x06},
	},
}
