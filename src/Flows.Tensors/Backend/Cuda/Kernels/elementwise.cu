// Element-wise maps, broadcasting binary ops, where, casts, fills and strided copies.
// Op codes follow the case order of UnaryOp and BinaryOp (CudaOps.fs holds the mapping).

template <typename T> __device__ __forceinline__ T unary_op(int op, T x, double p, double q) {
    const T one = (T)1, zero = (T)0;
    switch (op) {
    case 0: return -x;
    case 1: return exp(x);
    case 2: return log(x);
    case 3: return log1p(x);
    case 4: return expm1(x);
    case 5: return sqrt(x);
    case 6: return fabs(x);
    case 7: return x != x ? x : (x > zero ? one : (x < zero ? -one : zero));
    case 8: return tanh(x);
    case 9: return one / (one + exp(-x));
    case 10: return (x > zero ? x : zero) + log1p(exp(-fabs(x)));
    case 11: return x > zero ? x : zero;
    case 12: return sin(x);
    case 13: return cos(x);
    case 14: return atan(x);
    case 15: return x * x;
    case 16: return one / x;
    case 17: return floor(x);
    case 18: return ceil(x);
    case 19: return rint(x);  // halves to even, as Math.Round
    case 20: return x > zero ? one : zero;
    case 21: return x != x ? one : zero;
    case 22: return isinf(x) ? one : zero;
    case 23: return x + (T)p;
    case 24: return x * (T)p;
    case 25: return (T)p - x;
    case 26: return p == 2.0 ? x * x : (p == 1.0 ? x : (p == 0.5 ? sqrt(x) : (p == -1.0 ? one / x : pow(x, (T)p))));
    case 27: return x > zero ? x : (T)p * x;
    case 28: return x > zero ? x : (T)p * expm1(x < zero ? x : zero);
    case 29: return x < (T)p ? (T)p : (x > (T)q ? (T)q : x);
    case 30: return (x >= (T)p && x <= (T)q) ? one : zero;
    default: return x;
    }
}

template <typename T> __device__ __forceinline__ T binary_op(int op, T a, T b) {
    const T one = (T)1, zero = (T)0;
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return pow(a, b);
    case 5: return nan_max(a, b);
    case 6: return nan_min(a, b);
    case 7: return atan2(a, b);
    case 8: return a < b ? one : zero;
    case 9: return a > b ? one : zero;
    case 10: return a <= b ? one : zero;
    case 11: return a >= b ? one : zero;
    case 12: return a == b ? one : zero;
    case 13: return a != b ? one : zero;
    default: return a;
    }
}

#define UNARY(S, T) \
extern "C" __global__ void unary_##S(int op, double p, double q, i64 n, const T* x, T* r) { \
    GRID_STRIDE(i, n) r[i] = unary_op<T>(op, x[i], p, q); }
FOR_FLOATS(UNARY)

// contiguous != 0: both operands already have the result's shape (no index arithmetic).
#define BINARY(S, T) \
extern "C" __global__ void binary_##S(int op, i64 n, int contiguous, int rank, Dims shape, Dims sa, Dims sb, \
                                      const T* a, const T* b, T* r) { \
    GRID_STRIDE(i, n) { \
        if (contiguous) r[i] = binary_op<T>(op, a[i], b[i]); \
        else r[i] = binary_op<T>(op, a[strided_offset(i, rank, shape, sa)], b[strided_offset(i, rank, shape, sb)]); } }
FOR_FLOATS(BINARY)

#define WHERE(S, T) \
extern "C" __global__ void where_##S(i64 n, int rank, Dims shape, Dims sc, Dims sa, Dims sb, \
                                     const T* c, const T* a, const T* b, T* r) { \
    GRID_STRIDE(i, n) { \
        T cond = c[strided_offset(i, rank, shape, sc)]; \
        r[i] = cond != (T)0 ? a[strided_offset(i, rank, shape, sa)] : b[strided_offset(i, rank, shape, sb)]; } }
FOR_FLOATS(WHERE)

// Float to int truncates toward zero and saturates (NaN gives 0), as .NET 9+ conversions do.
#define CAST(S1, T1, S2, T2) \
extern "C" __global__ void cast_##S1##_##S2(i64 n, const T1* x, T2* r) { GRID_STRIDE(i, n) r[i] = (T2)x[i]; }
CAST(f32, float, f64, double)
CAST(f32, float, i32, int)
CAST(f64, double, f32, float)
CAST(f64, double, i32, int)
CAST(i32, int, f32, float)
CAST(i32, int, f64, double)

#define FILL(S, T) \
extern "C" __global__ void fill_##S(i64 n, double value, T* r) { GRID_STRIDE(i, n) r[i] = (T)value; } \
extern "C" __global__ void arange_##S(i64 n, T* r) { GRID_STRIDE(i, n) r[i] = (T)i; }
FOR_ALL(FILL)

// dst[dstOffset + sum of idx*dstStrides] = src[srcOffset + sum of idx*srcStrides] over the box `shape`:
// expand, permute, slice, flip, pad and cat are all this copy.
#define STRIDED_COPY(S, T) \
extern "C" __global__ void strided_copy_##S(i64 n, int rank, Dims shape, const T* src, i64 srcOffset, Dims srcStrides, \
                                            T* dst, i64 dstOffset, Dims dstStrides) { \
    GRID_STRIDE(i, n) \
        dst[dstOffset + strided_offset(i, rank, shape, dstStrides)] = src[srcOffset + strided_offset(i, rank, shape, srcStrides)]; }
FOR_ALL(STRIDED_COPY)

// Keeps the lower (upper) triangle from diagonal k on, over a batch of rows x cols matrices.
#define TRIANGLE(S, T) \
extern "C" __global__ void triangle_##S(i64 n, int rows, int cols, int lower, int k, const T* x, T* r) { \
    GRID_STRIDE(i, n) { \
        int j = (int)(i % cols); int row = (int)((i / cols) % rows); \
        bool keep = lower ? (j - row <= k) : (j - row >= k); \
        r[i] = keep ? x[i] : (T)0; } }
FOR_ALL(TRIANGLE)
