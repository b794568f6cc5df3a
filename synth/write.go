package synth

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// slabElems is how many values are generated before they are written: 4M values (8 MiB of
// BF16), a multiple of genChunk, enough chunks to keep every worker busy.
const slabElems = 64 * genChunk

// Write writes the plan's checkpoint into dir (an existing, empty directory; callers make
// it a temporary one and rename it): the shards, model.safetensors.index.json when there
// is more than one, config.json and tokenizer.json. One slab of values is in memory at a
// time. progress, when not nil, is called with the bytes of each slab written. ctx
// cancels between slabs.
func (p *Plan) Write(ctx context.Context, dir string, progress func(bytes int64)) error {
	if ctx == nil {
		ctx = context.Background()
	}
	meta := map[string]string{"format": "pt", "autoq.synth": p.describe()}
	slab := make([]uint16, min(int64(slabElems), p.maxElements()))
	for _, sh := range p.Shards {
		infos := make([]safetensors.TensorInfo, len(sh.Tensors))
		for k, i := range sh.Tensors {
			t := p.Tensors[i]
			infos[k] = safetensors.TensorInfo{Name: t.Name, DType: p.Opt.DType, Shape: t.Shape}
		}
		w, err := safetensors.Create(filepath.Join(dir, sh.File), infos, meta)
		if err != nil {
			return err
		}
		for _, i := range sh.Tensors {
			if err := w.StreamTensor(p.Tensors[i].Name, func(write func([]byte) error) error {
				n := p.Tensors[i].Elements()
				for lo := int64(0); lo < n; lo += slabElems {
					if err := ctx.Err(); err != nil {
						return err
					}
					buf := slab[:min(int64(len(slab)), n-lo)]
					p.Fill(i, lo, buf)
					b := tensor.FromU16(p.Opt.DType, buf, len(buf)).Data
					if err := write(b); err != nil {
						return err
					}
					if progress != nil {
						progress(int64(len(b)))
					}
				}
				return nil
			}); err != nil {
				w.Abort()
				return err
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	if len(p.Shards) > 1 {
		if err := p.writeIndex(dir); err != nil {
			return err
		}
	}
	cfg := p.Opt.Config
	cj, err := checkpoint.ConfigJSON(&cfg)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644); err != nil {
		return err
	}
	tj, err := TokenizerJSON(cfg.Vocab)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644)
}

// writeIndex writes model.safetensors.index.json as transformers does: the total tensor
// bytes and the shard of every tensor (keys sorted).
func (p *Plan) writeIndex(dir string) error {
	wm := make(map[string]string, len(p.Tensors))
	for _, t := range p.Tensors {
		wm[t.Name] = p.Shards[t.Shard].File
	}
	idx := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": p.Bytes}, wm}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, safetensors.IndexFileName), append(b, '\n'), 0o644)
}

func (p *Plan) maxElements() int64 {
	var m int64
	for _, t := range p.Tensors {
		m = max(m, t.Elements())
	}
	return m
}

// describe is the "autoq.synth" metadata value: what generated the file.
func (p *Plan) describe() string {
	name := p.Opt.Name
	if name == "" {
		name = "custom"
	}
	return fmt.Sprintf("shape=%s layers=%d dtype=%s seed=%d", name, p.Opt.Config.Layers, p.Opt.DType, p.Opt.Seed)
}
