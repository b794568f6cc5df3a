# autoq: `make build` (CPU-only binary), `make cuda` (CUDA library + cuda-tagged binary),
# `make test` (what CI runs), `make bench`, `make gpu-check` (on a GPU machine).
GO        ?= go
CMAKE     ?= cmake
BUILD_DIR ?= build/cuda
# CUDA architectures for the library; `make cuda CUDA_ARCHS=native` on a GPU machine.
CUDA_ARCHS ?= 80;86;89;90
NVCC      := $(shell command -v nvcc 2>/dev/null)
# Directory holding libcudart_static.a / libcublas_static.a: next to the nvcc on PATH,
# then /usr/local/cuda/lib64, then Debian's multiarch directory.
CUDA_LIB  ?= $(firstword $(foreach d,$(if $(NVCC),$(dir $(NVCC))../lib64 $(dir $(NVCC))../targets/x86_64-linux/lib) /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu,$(if $(wildcard $(d)/libcudart_static.a),$(abspath $(d)))))
CUDA_ENV  := CGO_ENABLED=1 CGO_LDFLAGS="-L$(CUDA_LIB)"
GOFILES   := $(shell find . -name '*.go' -not -path './.gpu-go/*' -not -path './build/*')

.PHONY: build cuda cuda-lib test test-go test-cuda fmt-check vet bench gpu-check llamacpp-check clean

build:
	$(GO) build -o autoq ./cmd/autoq

cuda-lib:
	@test -n "$(NVCC)" || { echo "make: nvcc not found (install the CUDA toolkit)"; exit 1; }
	$(CMAKE) -S . -B $(BUILD_DIR) -DAUTOQ_CUDA_ARCHS="$(CUDA_ARCHS)" >/dev/null
	$(CMAKE) --build $(BUILD_DIR) -j

cuda: cuda-lib
	@test -n "$(CUDA_LIB)" || { echo "make: libcudart_static.a not found; set CUDA_LIB=DIR"; exit 1; }
	$(CUDA_ENV) $(GO) build -tags cuda -o autoq ./cmd/autoq

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test-go: fmt-check vet
	$(GO) test ./...

# The cuda-tagged suite: builds the library, vets and runs the tests (GPU tests skip with a
# message where there is no GPU). Skipped with a note when nvcc is missing.
test-cuda:
	@if [ -z "$(NVCC)" ]; then echo "make: nvcc not found: skipping the CUDA library and the cuda-tagged tests"; exit 0; fi; \
	$(MAKE) --no-print-directory cuda-lib && \
	$(CUDA_ENV) $(GO) vet -tags cuda ./... && \
	$(CUDA_ENV) $(GO) test -tags cuda ./...

test: test-go test-cuda

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./quant/ ./calib/
	./autoq bench kernels

gpu-check:
	scripts/gpu-check.sh

# GGUF end to end: installs the pinned llama.cpp CPU build (node-llama-cpp, into .llamacpp/)
# and runs the checks that score autoq's GGUF files with it (`make test` runs the same tests
# whenever .llamacpp/ is there: .ci/run installs it when node exists). Skipped when node is
# missing.
llamacpp-check:
	@if ! command -v node >/dev/null 2>&1; then echo "make: node not found: skipping the llama.cpp check"; exit 0; fi; \
	scripts/llamacpp/install.sh && $(GO) test -count=1 -v ./gguf/llamacpp/ && \
	$(GO) test -count=1 -v -run 'LlamaCpp' ./autoquant/

clean:
	rm -rf $(BUILD_DIR) autoq gpu-results
