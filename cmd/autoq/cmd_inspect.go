package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/autoq/autoq/checkpoint"
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
			for _, n := range o.Names() {
				info, _ := o.Info(n)
				rep.Tensors = append(rep.Tensors, inspectRow{Name: n, DType: info.DType.String(), Shape: info.Shape, Bytes: info.Size})
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
	fmt.Fprintln(tw, "name\tdtype\tshape\tbytes")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\n", t.Name, t.DType, t.Shape, t.Bytes)
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
