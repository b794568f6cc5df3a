// ggmlq runs ggml's own quantizers and dequantizers (from the libggml-base.so that
// node-llama-cpp ships) so that autoq's tests can compare its Go code with llama.cpp's
// byte for byte. Built by package gguf/llamacpp with the system C compiler.
//
//   ggmlq LIB quantize TYPE NROWS NPERROW HAS_IMATRIX  < rows (f32) [imatrix (f32 x NPERROW)] > blocks
//   ggmlq LIB dequantize TYPE N                        < blocks > N f32 (dequantize_row_<type>)
//   ggmlq LIB sizes                                    > "type blck_size type_size" per known type
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef size_t (*quantize_chunk_fn)(int, const float *, void *, int64_t, int64_t, int64_t, const float *);
typedef void (*quantize_init_fn)(int);
typedef size_t (*row_size_fn)(int, int64_t);
typedef int64_t (*blck_size_fn)(int);
typedef size_t (*type_size_fn)(int);
typedef const char *(*type_name_fn)(int);
typedef void (*dequant_fn)(const void *, float *, int64_t);

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "ggmlq: symbol %s not found: %s\n", name, dlerror());
        exit(2);
    }
    return p;
}

static void *read_all(size_t n) {
    char *buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, stdin) != n) {
        fprintf(stderr, "ggmlq: short input (wanted %zu bytes)\n", n);
        exit(2);
    }
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: ggmlq LIB quantize|dequantize|sizes ...\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        fprintf(stderr, "ggmlq: %s\n", dlerror());
        return 2;
    }
    type_name_fn type_name = (type_name_fn)sym(lib, "ggml_type_name");
    if (strcmp(argv[2], "sizes") == 0) {
        blck_size_fn blck = (blck_size_fn)sym(lib, "ggml_blck_size");
        type_size_fn tsize = (type_size_fn)sym(lib, "ggml_type_size");
        for (int t = 0; t < 40; t++) {
            if (blck(t) > 0 && tsize(t) > 0) printf("%d %lld %zu %s\n", t, (long long)blck(t), tsize(t), type_name(t));
        }
        return 0;
    }
    if (strcmp(argv[2], "quantize") == 0 && argc == 7) {
        int type = atoi(argv[3]);
        int64_t nrows = atoll(argv[4]), nper = atoll(argv[5]);
        int has_imatrix = atoi(argv[6]);
        float *src = read_all(sizeof(float) * nrows * nper);
        float *imatrix = has_imatrix ? read_all(sizeof(float) * nper) : NULL;
        ((quantize_init_fn)sym(lib, "ggml_quantize_init"))(type);
        size_t rs = ((row_size_fn)sym(lib, "ggml_row_size"))(type, nper);
        void *dst = calloc(nrows, rs);
        size_t n = ((quantize_chunk_fn)sym(lib, "ggml_quantize_chunk"))(type, src, dst, 0, nrows, nper, imatrix);
        fwrite(dst, 1, n, stdout);
        return 0;
    }
    if (strcmp(argv[2], "dequantize") == 0 && argc == 5) {
        int type = atoi(argv[3]);
        int64_t n = atoll(argv[4]);
        size_t bytes = ((row_size_fn)sym(lib, "ggml_row_size"))(type, n);
        void *src = read_all(bytes);
        float *dst = malloc(sizeof(float) * n);
        char name[64];
        const char *tn = type_name(type);
        if (strcmp(tn, "f16") == 0) {
            snprintf(name, sizeof name, "ggml_fp16_to_fp32_row");
        } else if (strcmp(tn, "bf16") == 0) {
            snprintf(name, sizeof name, "ggml_bf16_to_fp32_row");
        } else {
            snprintf(name, sizeof name, "dequantize_row_%s", tn);
        }
        ((dequant_fn)sym(lib, name))(src, dst, n);
        fwrite(dst, sizeof(float), n, stdout);
        return 0;
    }
    fprintf(stderr, "ggmlq: bad arguments\n");
    return 2;
}
