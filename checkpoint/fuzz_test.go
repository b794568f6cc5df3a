package checkpoint

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// Fuzz targets for the checkpoint parsers of outside input. Seeds are built here (plus
// the real stories260K.bin header when ../shared/data has it); regressions found by
// fuzzing live in testdata/fuzz/FuzzX. Run one with e.g.
// `go test -run '^$' -fuzz '^FuzzParseConfig$' -parallel 1 ./checkpoint`.

// FuzzParseConfig: any bytes give a config or an error naming the file; an accepted config
// is valid and survives configJSON -> ParseConfig (except rope_scaling, which configJSON
// does not write).
func FuzzParseConfig(f *testing.F) {
	for _, c := range []LlamaConfig{
		{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, MaxSeq: 512, TiedEmbeddings: true},
		{Dim: 8, HiddenDim: 16, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 10, MaxSeq: 4, Architecture: "Qwen2ForCausalLM", Bias: true, TorchDType: "bfloat16", RopeTheta: 1e6, NormEps: 1e-6},
		{Dim: 8, HiddenDim: 16, Layers: 2, Heads: 2, KVHeads: 2, Vocab: 10, MaxSeq: 4, Architecture: "MistralForCausalLM"},
	} {
		b, err := configJSON(&c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,` +
		`"num_attention_heads":2,"vocab_size":4,"max_position_embeddings":8,"rope_scaling":{"type":"linear","factor":2},"head_dim":4}`))
	f.Add([]byte(`{"architectures":["GPT2LMHeadModel"]}`))
	f.Add([]byte(`{"architectures":[]}`))
	f.Add([]byte(`not json`))
	const name = "fuzz/config.json"
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(name, raw)
		if testutil.Refused(t, err, name) {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		b, err := configJSON(c)
		back := testutil.Reparse(t, "config", ParseConfig, name, b, err)
		want := *c
		want.RopeScaling = ""
		if want.TorchDType == "" {
			want.TorchDType = "float32"
		}
		if *back != want {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", *back, want)
		}
	})
}

// FuzzParseLlama2C: any bytes give tensors or an error naming the file; accepted files have
// a valid config, the expected tensors, and tensors whose bytes account for the whole file.
func FuzzParseLlama2C(f *testing.F) {
	f.Add(llama2cFile(4, 6, 1, 2, 1, 3, 2))
	f.Add(llama2cFile(4, 6, 2, 2, 2, -3, 2)) // untied classifier
	f.Add(llama2cFile(4, 6, 1, 2, 1, 3, 2)[:40])
	f.Add([]byte("PK\x03\x04 torch zip"))
	f.Add([]byte("ak42\x01\x00\x00\x00"))
	f.Add(wrappingLlama2C())
	if p := testutil.SharedDataIfPresent(f, "stories260K.bin"); p != "" {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw[:4096]) // the real header, truncated: fuzzing whole models is slow
	}
	const name = "fuzz/model.bin"
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, ts, err := ParseLlama2C(name, raw)
		if testutil.Refused(t, err, name) {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		want := 2 + 9*cfg.Layers
		if !cfg.TiedEmbeddings {
			want++
		}
		if len(ts) != want {
			t.Fatalf("%d tensors, want %d", len(ts), want)
		}
		bytes := llama2cHeaderBytes + 4*cfg.MaxSeq*cfg.HeadDim() // the skipped RoPE tables
		for _, nt := range ts {
			if nt.T.DType != tensor.F32 || len(nt.T.Data) != 4*nt.T.NumElements() {
				t.Fatalf("tensor %s: %s %v with %d bytes", nt.Name, nt.T.DType, nt.T.Shape, len(nt.T.Data))
			}
			bytes += len(nt.T.Data)
		}
		if bytes != len(raw) {
			t.Fatalf("tensors cover %d bytes of %d", bytes, len(raw))
		}
	})
}

// wrappingLlama2C is a 108-byte file whose header (dim 2^30, hidden 2^26, 16 layers, 2^29
// heads and kv heads, vocab 2^30-33, seq 10) needs 2^64+108 bytes: in int64 arithmetic the
// size wrapped to exactly the file's length and slicing the embedding panicked.
func wrappingLlama2C() []byte {
	b := make([]byte, 108)
	for i, v := range []uint32{1 << 30, 1 << 26, 16, 1 << 29, 1 << 29, 1<<30 - 33, 10} {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

func TestParseLlama2CSizeOverflow(t *testing.T) {
	_, _, err := ParseLlama2C("wrap.bin", wrappingLlama2C())
	require.ErrorContains(t, err, "wrap.bin")
	require.ErrorContains(t, err, "needs more than 2^64")
}
