package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/autoq/autoq/calib"
	"github.com/spf13/pflag"
)

func init() {
	var c calibFlags
	register(&command{
		name:    "calib merge",
		summary: "merge shard histogram states (from calibrate --histograms) into one calibration table",
		usage: "SHARD... [flags]\n\nEach SHARD is a histogram state file, or a directory whose histograms-*.json files are all\n" +
			"taken. Merging is exact: the table equals that of one unsharded run, bit for bit. The shards\n" +
			"must be the whole run: every I of N once, all made with the same settings (model, data,\n" +
			"--seq-len, --tokens, ...); anything else is refused.",
		flags: func(fs *pflag.FlagSet) { c.register(fs) },
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) == 0 {
				return usagef("expected at least one SHARD state file or directory")
			}
			opt, err := c.options()
			if err != nil {
				return err
			}
			var files []string
			for _, a := range args {
				st, err := os.Stat(a)
				if err != nil {
					return err
				}
				if !st.IsDir() {
					files = append(files, a)
					continue
				}
				m, _ := filepath.Glob(filepath.Join(a, "histograms-*.json"))
				if len(m) == 0 {
					return fmt.Errorf("%s: directory holds no histograms-*.json state files", a)
				}
				sort.Strings(m)
				files = append(files, m...)
			}
			seen := map[string]bool{}
			for _, f := range files {
				abs, _ := filepath.Abs(f)
				if seen[abs] {
					return usagef("state file %s given twice (its counts would be added twice)", f)
				}
				seen[abs] = true
			}
			eng, err := openCalibEngine(e, c.device)
			if err != nil {
				return err
			}
			defer eng.Close()
			states, err := calib.ReadShardSet(files)
			if err != nil {
				return err
			}
			s := calib.NewSession(calib.SessionOptions{Engine: eng})
			for i, st := range states {
				if err := s.MergeState(st, files[i]); err != nil {
					return err
				}
			}
			return c.finish(e, s, opt)
		},
	})
}
