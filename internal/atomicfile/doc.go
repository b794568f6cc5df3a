// Package atomicfile writes files and directories so that an interrupted run never leaves
// a half-written output: data goes to a temporary name beside the target and is renamed
// into place only when complete.
package atomicfile
