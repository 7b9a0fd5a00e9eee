// Shared by every Flows kernel source (prepended before compilation; NVRTC has no include path).
// Shapes and strides travel by value as Dims; element i of a contiguous result maps to a source
// offset through its multi-index, so broadcasting, permutes, slices and flips are all strides.

#define MAX_RANK 8

// NVRTC has no math.h: infinity from its bit pattern.
#define INFINITY __int_as_float(0x7f800000)

// The block's dynamic shared memory as bytes (the emulator of tests/CudaEmulator defines its own).
#ifndef DYNAMIC_SHARED
#define DYNAMIC_SHARED(name) extern __shared__ unsigned char name[]
#endif

struct Dims { int v[MAX_RANK]; };

typedef long long i64;
typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

// Offset, under `strides`, of the element at linear index i of a row-major tensor of `shape`.
__device__ __forceinline__ i64 strided_offset(i64 i, int rank, const Dims& shape, const Dims& strides) {
    i64 off = 0;
    for (int d = rank - 1; d >= 0; --d) {
        int s = shape.v[d];
        i64 q = i / s;
        off += (i - q * s) * (i64)strides.v[d];
        i = q;
    }
    return off;
}

// NaN-propagating max and min, as .NET's Math.Max/Min and TensorPrimitives.Max/Min.
template <typename T> __device__ __forceinline__ T nan_max(T a, T b) { return (a != a || b != b) ? a + b : (a > b ? a : (b > a ? b : (a == 0 && signbit((double)a) ? b : a))); }
template <typename T> __device__ __forceinline__ T nan_min(T a, T b) { return (a != a || b != b) ? a + b : (a < b ? a : (b < a ? b : (a == 0 && signbit((double)a) ? a : b))); }

#define FOR_FLOATS(M) M(f32, float) M(f64, double)
#define FOR_ALL(M) M(f32, float) M(f64, double) M(i32, int)
