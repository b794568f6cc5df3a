package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/autoq/autoq/tensor"
)

// Standard file names of a Hugging Face checkpoint directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Checkpoint is a set of tensors spread over one or more safetensors files: a single file
// or a Hugging Face sharded checkpoint.
type Checkpoint struct {
	path   string
	files  []*File
	names  []string
	byName map[string]*File
}

// OpenCheckpoint opens path, which may be a .safetensors file, an index file
// (*.safetensors.index.json), or a directory holding model.safetensors or
// model.safetensors.index.json (the single file wins when both exist, as in transformers).
func OpenCheckpoint(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		single := filepath.Join(path, SingleFileName)
		if _, err := os.Stat(single); err == nil {
			return openSingle(single)
		}
		index := filepath.Join(path, IndexFileName)
		if _, err := os.Stat(index); err == nil {
			return openIndex(index)
		}
		return nil, fmt.Errorf("safetensors: %s: directory has neither %s nor %s", path, SingleFileName, IndexFileName)
	}
	if strings.HasSuffix(path, ".json") {
		return openIndex(path)
	}
	return openSingle(path)
}

func openSingle(path string) (*Checkpoint, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{path: path, files: []*File{f}, names: f.Names(), byName: map[string]*File{}}
	for _, n := range c.names {
		c.byName[n] = f
	}
	return c, nil
}

// openIndex reads a sharded checkpoint's index. Every name in weight_map must exist in the
// shard it points to; shard names must be plain file names in the index's directory.
// Tensors present in a shard but absent from weight_map are ignored, as transformers does.
func openIndex(path string) (_ *Checkpoint, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: index %s: invalid JSON: %w", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: index %s: missing or empty weight_map", path)
	}
	dir := filepath.Dir(path)
	shards := map[string]*File{}
	c := &Checkpoint{path: path, byName: map[string]*File{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	var shardNames []string
	for name, shard := range idx.WeightMap {
		if shard == "" || shard != filepath.Base(shard) || shard == "." || shard == ".." {
			return nil, fmt.Errorf("safetensors: index %s: tensor %q: shard %q is not a file name in the index's directory", path, name, shard)
		}
		if _, ok := shards[shard]; !ok {
			shards[shard] = nil
			shardNames = append(shardNames, shard)
		}
	}
	sort.Strings(shardNames)
	for _, s := range shardNames {
		f, err := Open(filepath.Join(dir, s))
		if err != nil {
			return nil, err
		}
		shards[s] = f
		c.files = append(c.files, f)
	}
	for _, f := range c.files {
		for _, n := range f.Names() {
			if filepath.Join(dir, idx.WeightMap[n]) == f.path {
				c.names = append(c.names, n)
				c.byName[n] = f
			}
		}
	}
	for name, shard := range idx.WeightMap {
		if _, ok := c.byName[name]; !ok {
			return nil, fmt.Errorf("safetensors: index %s: tensor %q: not found in shard %s", path, name, shard)
		}
	}
	return c, nil
}

// Path is the path given to OpenCheckpoint after resolving a directory.
func (c *Checkpoint) Path() string { return c.path }

// Names lists the tensors: shard by shard (shards in name order), offset order within one.
func (c *Checkpoint) Names() []string { return append([]string(nil), c.names...) }

// Info describes a tensor.
func (c *Checkpoint) Info(name string) (TensorInfo, bool) {
	f, ok := c.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Tensor returns a zero-copy view of the named tensor (see File.Tensor).
func (c *Checkpoint) Tensor(name string) (*tensor.Tensor, error) {
	f, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: no tensor %q", c.path, name)
	}
	return f.Tensor(name)
}

// Metadata merges the __metadata__ of all files (the first shard wins on a conflict).
func (c *Checkpoint) Metadata() map[string]string {
	out := map[string]string{}
	for i := len(c.files) - 1; i >= 0; i-- {
		for k, v := range c.files[i].meta {
			out[k] = v
		}
	}
	return out
}

// Files lists the paths of the underlying files.
func (c *Checkpoint) Files() []string {
	out := make([]string, len(c.files))
	for i, f := range c.files {
		out[i] = f.path
	}
	return out
}

// Close unmaps every file.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}
