// Gather, scatter-add and sorted search on the [outer, n, inner] view along the indexed dimension.
// Indices are not range-checked on the device (the CPU backend checks them); an index outside
// [0, n) reads or writes out of bounds.

// result[o, j, i] = x[o, index[o, j, i], i] for the m positions j of the index along the dimension.
#define GATHER(S, T) \
extern "C" __global__ void gather_##S(i64 total, int n, int m, int inner, const T* x, const int* index, T* r) { \
    GRID_STRIDE(at, total) { \
        i64 i = at % inner; i64 o = at / ((i64)m * inner); \
        r[at] = x[(o * n + index[at]) * inner + i]; } }
FOR_ALL(GATHER)

// r (zeroed first) [o, index[o, j, i], i] += x[o, j, i]; atomics make the order of float sums vary.
#define SCATTER_ADD(S, T) \
extern "C" __global__ void scatter_add_##S(i64 total, int n, int m, int inner, const T* x, const int* index, T* r) { \
    GRID_STRIDE(at, total) { \
        i64 i = at % inner; i64 o = at / ((i64)m * inner); \
        atomicAdd(&r[(o * n + index[at]) * inner + i], x[at]); } }
FOR_ALL(SCATTER_ADD)

// For each value of row `row` (m per row), how many of the k sorted entries lie below it
// (right: at or below); shared != 0 means one sorted row serves every row of values.
#define SEARCH_SORTED(S, T) \
extern "C" __global__ void search_sorted_##S(i64 total, int k, int m, int shared, int right, const T* sorted, const T* values, int* r) { \
    GRID_STRIDE(at, total) { \
        i64 row = at / m; \
        const T* s = sorted + (shared ? 0 : row * k); \
        T v = values[at]; \
        int lo = 0, hi = k; \
        while (lo < hi) { \
            int mid = (lo + hi) >> 1; \
            bool below = right ? (s[mid] <= v) : (s[mid] < v); \
            if (below) lo = mid + 1; else hi = mid; } \
        r[at] = lo; } }
FOR_ALL(SEARCH_SORTED)
