package checkpoint

import (
	"fmt"
	"path/filepath"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/safetensors"
)

// HFOutputKind marks a Hugging Face checkpoint directory autoq wrote (convert).
const HFOutputKind = "Hugging Face checkpoint"

// WriteHF writes a Hugging Face checkpoint directory: config.json and model.safetensors
// (tensors in the given order, __metadata__ {"format": "pt"} as transformers expects).
// The directory is built beside dir and renamed into place: an existing dir is replaced
// only when the new one is complete.
func WriteHF(dir string, cfg *LlamaConfig, tensors []safetensors.NamedTensor) error {
	cj, err := configJSON(cfg)
	if err != nil {
		return fmt.Errorf("checkpoint: %s: config: %w", dir, err)
	}
	return atomicfile.Dir(dir, HFOutputKind, func(tmp string) error {
		if err := atomicfile.WriteFile(filepath.Join(tmp, "config.json"), cj, 0o644); err != nil {
			return err
		}
		return safetensors.WriteFile(filepath.Join(tmp, safetensors.SingleFileName), tensors, map[string]string{"format": "pt"})
	})
}
