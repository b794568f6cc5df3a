// Package testutil holds helpers shared by tests: locating the shared real-model data
// (../shared/data beside the repository) and deterministic synthetic tensors.
package testutil
