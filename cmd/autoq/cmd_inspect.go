package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/quant"
	"github.com/spf13/pflag"
)

func init() {
	var asJSON bool
	register(&command{
		name:    "inspect",
		summary: "list a checkpoint's tensors (name, dtype, shape, bytes) and totals",
		usage: "PATH [flags]\n\nPATH is a .safetensors file, a Hugging Face checkpoint directory (single file or sharded), an\n" +
			"index .json, or a llama2.c .bin file (shown with the Hugging Face names autoq convert gives).",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("expected one PATH, got %d arguments", len(args))
			}
			o, err := checkpoint.OpenAny(args[0])
			if err != nil {
				return err
			}
			defer o.Close()
			rep := inspectReport{Path: args[0], Metadata: o.Metadata()}
			schemes := quantizedSchemes(rep.Metadata)
			for _, n := range o.Names() {
				info, _ := o.Info(n)
				rep.Tensors = append(rep.Tensors, inspectRow{Name: n, DType: info.DType.String(), Shape: info.Shape, Bytes: info.Size, Quant: schemes[n]})
				rep.Totals.Tensors++
				rep.Totals.Elements += int64(numElements(info.Shape))
				rep.Totals.Bytes += info.Size
			}
			if o.Config != nil {
				rep.Architecture = o.Config.Architecture
			}
			if asJSON {
				return writeReportJSON(e.stdout, rep)
			}
			rep.print(e.stdout)
			return nil
		},
	})
}

func numElements(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

type inspectRow struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
	Bytes int64  `json:"bytes"`
	Quant string `json:"quant,omitempty"` // scheme of an autoq quantized weight's .qweight
}

// quantizedSchemes maps each W.qweight of an autoq checkpoint to its scheme name (w4g32...),
// read from the autoq.quant.W metadata (docs/FORMAT.md).
func quantizedSchemes(meta map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range meta {
		name, ok := strings.CutPrefix(k, checkpoint.QuantMetaKey)
		if !ok {
			continue
		}
		var m checkpoint.QuantMeta
		if json.Unmarshal([]byte(v), &m) != nil {
			out[name+checkpoint.QWeightSuffix] = "invalid metadata"
			continue
		}
		g, err := quant.ParseGranularity(m.Granularity)
		if err != nil {
			out[name+checkpoint.QWeightSuffix] = "invalid metadata"
			continue
		}
		out[name+checkpoint.QWeightSuffix] = quant.Scheme{Bits: m.Bits, Symmetric: m.Symmetric, Granularity: g, GroupSize: m.GroupSize}.String()
	}
	return out
}

type inspectReport struct {
	Path         string            `json:"path"`
	Architecture string            `json:"architecture,omitempty"`
	Tensors      []inspectRow      `json:"tensors"`
	Metadata     map[string]string `json:"metadata"`
	Totals       struct {
		Tensors  int   `json:"tensors"`
		Elements int64 `json:"elements"`
		Bytes    int64 `json:"bytes"`
	} `json:"totals"`
}

func (r *inspectReport) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tdtype\tshape\tbytes\tquant")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\n", t.Name, t.DType, t.Shape, t.Bytes, t.Quant)
	}
	tw.Flush()
	arch := ""
	if r.Architecture != "" {
		arch = ", " + r.Architecture
	}
	fmt.Fprintf(w, "\n%d tensors, %d elements, %s (%d bytes)%s\n", r.Totals.Tensors, r.Totals.Elements, humanBytes(r.Totals.Bytes), r.Totals.Bytes, arch)
	if len(r.Metadata) > 0 {
		fmt.Fprintf(w, "%d metadata entries (--json shows them)\n", len(r.Metadata))
	}
}
