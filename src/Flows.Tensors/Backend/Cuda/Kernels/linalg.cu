// Small batched dense linear algebra: one thread per right-hand-side column (triangular solve) or
// per matrix (LU). Sized for flow layers (n up to a few hundred); cuBLAS does the products.

// Solves op(A) X = B for one (matrix, column) pair per thread. Batch offsets (in elements) come
// from the host, which resolved the broadcasting of batch dimensions. A zero pivot gives inf/NaN.
#define SOLVE_TRIANGULAR(S, T) \
extern "C" __global__ void solve_triangular_##S(int batches, int n, int cols, int upper, int transpose, int unitDiagonal, \
                                                const i64* aOffsets, const i64* bOffsets, const T* a, const T* b, T* x) { \
    GRID_STRIDE(t, (i64)batches * cols) { \
        int batch = (int)(t / cols), c = (int)(t % cols); \
        const T* A = a + aOffsets[batch]; const T* B = b + bOffsets[batch]; T* X = x + (i64)batch * n * cols; \
        bool lowerEffective = (!upper) != (transpose != 0); \
        for (int step = 0; step < n; ++step) { \
            int i = lowerEffective ? step : n - 1 - step; \
            T s = B[(i64)i * cols + c]; \
            int from = lowerEffective ? 0 : i + 1, to = lowerEffective ? i : n; \
            for (int j = from; j < to; ++j) { \
                T aij = transpose ? A[(i64)j * n + i] : A[(i64)i * n + j]; \
                s -= aij * X[(i64)j * cols + c]; } \
            T d = unitDiagonal ? (T)1 : A[(i64)i * n + i]; \
            X[(i64)i * cols + c] = s / d; } } }
FOR_FLOATS(SOLVE_TRIANGULAR)

// LU with partial pivoting in place (lu holds a copy of the input), the row permutation and its sign.
#define LU(S, T) \
extern "C" __global__ void lu_##S(int batches, int n, T* lu, int* perm, T* sign) { \
    GRID_STRIDE(b, (i64)batches) { \
        T* A = lu + b * n * n; int* P = perm + b * n; \
        for (int i = 0; i < n; ++i) P[i] = i; \
        T sg = (T)1; \
        for (int col = 0; col < n; ++col) { \
            int pivot = col; \
            for (int i = col + 1; i < n; ++i) \
                if (fabs(A[(i64)i * n + col]) > fabs(A[(i64)pivot * n + col])) pivot = i; \
            if (pivot != col) { \
                sg = -sg; \
                for (int j = 0; j < n; ++j) { T t = A[(i64)col * n + j]; A[(i64)col * n + j] = A[(i64)pivot * n + j]; A[(i64)pivot * n + j] = t; } \
                int t = P[col]; P[col] = P[pivot]; P[pivot] = t; } \
            T p = A[(i64)col * n + col]; \
            if (p != (T)0) \
                for (int i = col + 1; i < n; ++i) { \
                    T f = A[(i64)i * n + col] / p; \
                    A[(i64)i * n + col] = f; \
                    for (int j = col + 1; j < n; ++j) A[(i64)i * n + j] -= f * A[(i64)col * n + j]; } } \
        sign[b] = sg; } }
FOR_FLOATS(LU)
