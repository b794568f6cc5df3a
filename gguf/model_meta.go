package gguf

import "github.com/autoq/autoq/checkpoint"

// llamaKVs is the metadata of llama.cpp's llama architecture for cfg, plus the vocabulary.
// general.file_type names the type holding most weight-matrix elements.
func llamaKVs(cfg *checkpoint.LlamaConfig, opt ModelOptions, plan []planned) ([]KV, error) {
	count := map[Type]int64{}
	quantized := false
	var major Type
	for _, p := range plan {
		if len(p.shape) != 2 {
			continue
		}
		count[p.typ] += int64(p.shape[0]) * int64(p.shape[1])
		if count[p.typ] > count[major] || (count[p.typ] == count[major] && p.typ < major) {
			major = p.typ
		}
		quantized = quantized || isBlockType(p.typ)
	}
	ftype, err := FileType(major)
	if err != nil {
		return nil, err
	}
	name := opt.Name
	if name == "" {
		name = "autoq"
	}
	kvs := []KV{
		{"general.architecture", "llama"},
		{"general.name", name},
		{"general.file_type", ftype},
	}
	if quantized {
		kvs = append(kvs, KV{"general.quantization_version", uint32(2)})
	}
	kvs = append(kvs,
		KV{"llama.vocab_size", uint32(cfg.Vocab)},
		KV{"llama.context_length", uint32(cfg.MaxSeq)},
		KV{"llama.embedding_length", uint32(cfg.Dim)},
		KV{"llama.block_count", uint32(cfg.Layers)},
		KV{"llama.feed_forward_length", uint32(cfg.HiddenDim)},
		KV{"llama.rope.dimension_count", uint32(cfg.HeadDim())},
		KV{"llama.attention.head_count", uint32(cfg.Heads)},
		KV{"llama.attention.head_count_kv", uint32(cfg.KVHeads)},
		KV{"llama.rope.freq_base", float32(cfg.RopeTheta)},
		KV{"llama.attention.layer_norm_rms_epsilon", float32(cfg.NormEps)},
	)
	vk, err := opt.Vocab.KVs()
	if err != nil {
		return nil, err
	}
	return append(kvs, vk...), nil
}
