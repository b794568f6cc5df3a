// Command autoq quantizes and calibrates Llama-family models. Run `autoq help` for the
// subcommands; each subcommand has --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strings"

	"github.com/autoq/autoq/autoquant"
	"github.com/spf13/pflag"
)

// Exit codes.
const (
	exitOK          = 0
	exitRuntime     = 1
	exitUsage       = 2
	exitInterrupted = 130 // SIGINT/SIGTERM, as shells report 128 + SIGINT
)

// command is one subcommand. Each lives in its own cmd_*.go file and registers itself in
// init with register. Multi-word commands ("calib merge", "bench gemm") are registered
// under their full name.
type command struct {
	name    string // "quantize", "calib merge"
	summary string // one line for `autoq help`
	usage   string // argument synopsis after the name, e.g. "PATH [flags]"
	// flags declares the command's flags on fs; run is called with the remaining args.
	flags func(fs *pflag.FlagSet)
	run   func(env *env, fs *pflag.FlagSet, args []string) error
	// noArgs: the command takes no positional arguments; given some, it is a usage error
	// ("NAME takes no arguments, got [...]") and run is not called.
	noArgs bool
}

// env carries the process's streams and its cancellation (Ctrl-C) so commands are
// testable.
type env struct {
	stdout io.Writer
	stderr io.Writer
	ctx    context.Context // nil: never cancelled
}

// job is the environment a job runs in: notes and progress bars on stderr.
func (e *env) job() autoquant.Env { return autoquant.Env{Ctx: e.ctx, Log: e.stderr, Bars: e.stderr} }

// tableWriter is a report that prints itself as the CLI's table.
type tableWriter interface{ WriteTable(w io.Writer) }

// print writes a job's report as JSON or as its table.
func (e *env) print(asJSON bool, rep tableWriter) error {
	if asJSON {
		return autoquant.WriteJSON(e.stdout, rep)
	}
	rep.WriteTable(e.stdout)
	return nil
}

// report prints a job's report as print does when the job succeeded, else returns its error.
func (e *env) report(asJSON bool, rep tableWriter, err error) error {
	if err != nil {
		return err
	}
	return e.print(asJSON, rep)
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

// usageError marks errors caused by how the command was called (exit code 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	ctx := interruptContext(os.Stderr)
	stop := startProfile(os.Getenv("AUTOQ_CPUPROFILE"), os.Stderr)
	stopMem := startMemProfile(os.Getenv("AUTOQ_MEMPROFILE"), os.Stderr)
	code := runMain(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, ctx: ctx})
	stopMem()
	stop()
	os.Exit(code)
}

// startProfile writes a CPU profile of the whole command to path (AUTOQ_CPUPROFILE; read
// it with `go tool pprof autoq PATH`) and returns the function that ends it. An existing
// file is never overwritten: the command then runs without a profile.
func startProfile(path string, stderr io.Writer) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "autoq: AUTOQ_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// runMain dispatches args and returns the exit code.
func runMain(args []string, e *env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		if len(args) > 1 {
			if c := lookup(args[1:]); c != nil {
				fs := newFlagSet(c, e)
				fs.SetOutput(e.stdout)
				fs.Usage()
				return exitOK
			}
		}
		printHelp(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, rest := lookupWithRest(args)
	if c == nil {
		fmt.Fprintf(e.stderr, "autoq: unknown command %q (see `autoq help`)\n", strings.Join(args[:min(2, len(args))], " "))
		return exitUsage
	}
	fs := newFlagSet(c, e)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(e.stderr, "autoq %s: %v\n", c.name, err)
		return exitUsage
	}
	var err error
	if c.noArgs && fs.NArg() != 0 {
		err = usagef("%s takes no arguments, got %q", c.name, fs.Args())
	} else {
		err = c.run(e, fs, fs.Args())
	}
	if e.ctx != nil && e.ctx.Err() != nil {
		return interrupted(e.stderr)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "autoq %s: %v\n", c.name, err)
		var ue usageError
		if errors.As(err, &ue) || autoquant.IsUsage(err) {
			return exitUsage
		}
		return exitRuntime
	}
	return exitOK
}

func newFlagSet(c *command, e *env) *pflag.FlagSet {
	fs := pflag.NewFlagSet("autoq "+c.name, pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.SortFlags = false
	if c.flags != nil {
		c.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: autoq %s %s\n\n%s\n\nFlags:\n%s", c.name, c.usage, c.summary, fs.FlagUsages())
	}
	return fs
}

// lookupWithRest finds the longest registered command name that prefixes args.
func lookupWithRest(args []string) (*command, []string) {
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			return c, args[2:]
		}
	}
	if c, ok := commands[args[0]]; ok {
		return c, args[1:]
	}
	return nil, nil
}

func lookup(args []string) *command { c, _ := lookupWithRest(args); return c }

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "autoq: quantization engine for Llama-family LLMs (CPU reference, CUDA kernels)")
	fmt.Fprintln(w, "\nUsage: autoq COMMAND [flags]   (autoq COMMAND --help for details)\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nExit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted (outputs left as they were).")
}
