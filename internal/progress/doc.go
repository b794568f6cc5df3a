// Package progress draws a one-line progress bar on a terminal (stderr), and stays quiet
// when the output is not a terminal or when disabled, so logs and tests stay clean.
package progress
