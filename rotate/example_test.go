package rotate_test

import (
	"log"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/rotate"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// Rotating a checkpoint too large for memory: one tensor at a time, each converted to the
// dtype written and dropped before the next (config.json must be written with
// r.Config(), which unties the embeddings).
func Example_streaming() {
	src, err := checkpoint.OpenAny("/models/llama-2-13b") // config.json + safetensors
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	r, err := rotate.New(*src.Config, 0, rotate.Options{})
	if err != nil {
		log.Fatal(err)
	}
	var in []safetensors.TensorInfo
	for _, name := range src.Names() {
		info, _ := src.Info(name)
		in = append(in, info)
	}
	out, err := r.Infos(in)
	if err != nil {
		log.Fatal(err)
	}
	for i := range out {
		out[i].DType = tensor.BF16
	}
	w, err := safetensors.Create("/models/llama-2-13b-rotated/model.safetensors", out, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}
	for _, info := range out {
		t, err := r.Tensor(src, info.Name)
		if err != nil {
			w.Abort()
			log.Fatal(err)
		}
		if err := w.WriteTensor(info.Name, t.Convert(tensor.BF16).Data); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
}
