package calibrun

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/model"
)

// ShardRecord is the record `autoq calib merge` checks (calib.ReadShardSet): this shard's
// index and count, and every setting that shapes the histograms, so that shards of another
// model, other data or another windowing are refused instead of merged.
//
// The settings, in order: input, sharding rule, histogram bins, forward pass (host F32 or
// device F16), batch (device forward only: GPU kernels may round differently with the
// number of rows; on the CPU every row is computed alone, so shards with other --batch
// still merge exactly), seq_len, tokens, split, windows (of the whole stream), model (a
// fingerprint of config, weights and linear layer types) and token_stream (a fingerprint
// of every window's token ids, all shards: it covers the data file, the tokenizer and the
// windowing). The calibrator, --workers and --rounds do not change the histograms and are
// not recorded.
//
// The model fingerprint hashes every weight (in parallel, once per Result); it is computed
// only when asked for, i.e. when a state file is written.
func (r *Result) ShardRecord() *calib.ShardRecord {
	r.fingerprintOnce.Do(func() { r.modelPrint = modelFingerprint(r.model) })
	forward := "host f32"
	if len(r.Opt.Runners) > 0 {
		forward = "device f16"
	}
	set := []calib.Setting{
		{Name: "input", Value: "model forward pass"},
		{Name: "sharding", Value: "window i -> shard i mod count"},
		{Name: calib.SettingBins, Value: fmt.Sprint(calib.NumBins)},
		{Name: "forward", Value: forward},
	}
	if len(r.Opt.Runners) > 0 {
		set = append(set, calib.Setting{Name: "batch", Value: fmt.Sprint(r.Opt.Batch)})
	}
	set = append(set,
		calib.Setting{Name: "seq_len", Value: fmt.Sprint(r.Opt.SeqLen)},
		calib.Setting{Name: "tokens", Value: fmt.Sprint(r.Opt.Tokens)},
		calib.Setting{Name: "split", Value: r.Opt.Split},
		calib.Setting{Name: "windows", Value: fmt.Sprint(r.Total)},
		calib.Setting{Name: "model", Value: r.modelPrint},
		calib.Setting{Name: "token_stream", Value: r.streamPrint},
	)
	return &calib.ShardRecord{Index: r.Opt.Shard, Count: r.Opt.Shards, Settings: set}
}

// windowPrint accumulates the token stream's fingerprint: each window as its length and
// ids (uint32, little-endian).
type windowPrint struct {
	fp  *calib.Fingerprint
	buf []byte
}

func newWindowPrint() *windowPrint { return &windowPrint{fp: calib.NewFingerprint()} }

func (w *windowPrint) add(win []int) {
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(len(win)))
	for _, id := range win {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(id))
	}
	w.fp.Write(w.buf)
}

// modelFingerprint identifies the model the forward passes ran: its config, every
// checkpoint tensor (name, shape, F32 bits) and the type of every linear layer (a
// fake-quantized layer gives other activations than the Dense one over the same weights).
// One SHA-256 per tensor, in parallel, combined in name order.
func modelFingerprint(m *model.Model) string {
	names := m.WeightNames()
	sums := make([]string, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 1<<16)
			for i := range next {
				fp := calib.NewFingerprint()
				t := m.Weight(names[i])
				fmt.Fprintf(fp, "%q %v\n", names[i], t.Shape)
				for _, x := range t.ToF32() {
					buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
					if len(buf) == cap(buf) {
						fp.Write(buf)
						buf = buf[:0]
					}
				}
				fp.Write(buf)
				buf = buf[:0]
				sums[i] = fp.String()
			}
		}()
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	fp := calib.NewFingerprint()
	fmt.Fprintf(fp, "%+v\n", m.Config)
	for i, n := range names {
		fmt.Fprintf(fp, "%s %s\n", n, sums[i])
	}
	for _, n := range m.LinearNames() {
		fmt.Fprintf(fp, "%s %T\n", n, m.Linear(n))
	}
	return fp.String()
}
