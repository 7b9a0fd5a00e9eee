// Reductions and scans along one dimension, on the [outer, n, inner] view of a tensor.
// One block per output: its threads stride along the reduced dimension, then reduce in shared memory.

template <typename T> __device__ __forceinline__ T reduce_init(int op) {
    switch (op) {
    case 1: return (T)1;
    case 2: return (T)(-INFINITY);
    case 3: return (T)INFINITY;
    default: return (T)0;
    }
}

template <typename T> __device__ __forceinline__ T reduce_combine(int op, T a, T b) {
    switch (op) {
    case 1: return a * b;
    case 2: return nan_max(a, b);
    case 3: return nan_min(a, b);
    default: return a + b;
    }
}

// Whether candidate (vb, ib) beats (va, ia) for argmax/argmin: NaN wins, then the first index on ties.
template <typename T> __device__ __forceinline__ bool arg_better(int largest, T va, int ia, T vb, int ib) {
    bool na = va != va, nb = vb != vb;
    if (na || nb) return nb && (!na || ib < ia);
    if (vb == va) return ib < ia;
    return largest ? vb > va : vb < va;
}

// op: 0 sum, 1 prod, 2 max, 3 min. Shared memory: blockDim.x elements of T.
#define REDUCE(S, T) \
extern "C" __global__ void reduce_##S(int op, int outer, int n, int inner, const T* x, T* r) { \
    DYNAMIC_SHARED(smem_##S); \
    T* acc = (T*)smem_##S; \
    int out = blockIdx.x; \
    int o = out / inner, in = out - o * inner; \
    T a = reduce_init<T>(op); \
    for (int j = threadIdx.x; j < n; j += blockDim.x) a = reduce_combine<T>(op, a, x[((i64)o * n + j) * inner + in]); \
    acc[threadIdx.x] = a; \
    __syncthreads(); \
    for (int s = blockDim.x / 2; s > 0; s >>= 1) { \
        if (threadIdx.x < s) acc[threadIdx.x] = reduce_combine<T>(op, acc[threadIdx.x], acc[threadIdx.x + s]); \
        __syncthreads(); } \
    if (threadIdx.x == 0) r[out] = acc[0]; }
FOR_FLOATS(REDUCE)

// Shared memory: blockDim.x elements of T, then blockDim.x ints.
#define ARG_REDUCE(S, T) \
extern "C" __global__ void arg_reduce_##S(int largest, int outer, int n, int inner, const T* x, int* r) { \
    DYNAMIC_SHARED(smem_arg_##S); \
    T* vals = (T*)smem_arg_##S; \
    int* idx = (int*)(vals + blockDim.x); \
    int out = blockIdx.x; \
    int o = out / inner, in = out - o * inner; \
    T best = x[(i64)o * n * inner + in]; int at = 0; \
    for (int j = threadIdx.x; j < n; j += blockDim.x) { \
        T v = x[((i64)o * n + j) * inner + in]; \
        if (arg_better<T>(largest, best, at, v, j)) { best = v; at = j; } } \
    vals[threadIdx.x] = best; idx[threadIdx.x] = at; \
    __syncthreads(); \
    for (int s = blockDim.x / 2; s > 0; s >>= 1) { \
        if (threadIdx.x < s && arg_better<T>(largest, vals[threadIdx.x], idx[threadIdx.x], vals[threadIdx.x + s], idx[threadIdx.x + s])) { \
            vals[threadIdx.x] = vals[threadIdx.x + s]; idx[threadIdx.x] = idx[threadIdx.x + s]; } \
        __syncthreads(); } \
    if (threadIdx.x == 0) r[out] = idx[0]; }
FOR_FLOATS(ARG_REDUCE)

// One thread per (outer, inner) line: sequential inclusive prefix sum, from the end when reverse.
#define CUMSUM(S, T) \
extern "C" __global__ void cumsum_##S(int outer, int n, int inner, int reverse, const T* x, T* r) { \
    GRID_STRIDE(line, (i64)outer * inner) { \
        i64 o = line / inner, in = line - o * inner; \
        T acc = (T)0; \
        for (int step = 0; step < n; ++step) { \
            int j = reverse ? n - 1 - step : step; \
            i64 at = (o * n + j) * inner + in; \
            acc += x[at]; r[at] = acc; } } }
FOR_FLOATS(CUMSUM)
