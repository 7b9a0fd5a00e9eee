// The emulator's cuBLAS: column-major GEMM on host memory with the argument checks cuBLAS makes
// (sizes non-negative, leading dimensions at least the rows they hold), so a wrong call from Flows
// fails here as it would on a GPU. Host pointer mode only, as Flows uses.
#include <cstdint>

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

enum Status : int { Ok = 0, NotInitialized = 1, InvalidValue = 7 };
enum Operation : int { N = 0, T = 1 };

int handleToken = 0;

template <typename F>
int gemm(void* handle, int opA, int opB, int m, int n, int k, const F* alpha, uint64_t a, int lda, uint64_t b, int ldb,
         const F* beta, uint64_t c, int ldc) {
    if (handle != &handleToken) return NotInitialized;
    if ((opA != N && opA != T) || (opB != N && opB != T) || m < 0 || n < 0 || k < 0) return InvalidValue;
    int rowsA = opA == N ? m : k, rowsB = opB == N ? k : n;
    auto atLeast = [](int ld, int rows) { return ld >= (rows > 1 ? rows : 1); };
    if (!atLeast(lda, rowsA) || !atLeast(ldb, rowsB) || !atLeast(ldc, m)) return InvalidValue;
    const F* A = reinterpret_cast<const F*>(a);
    const F* B = reinterpret_cast<const F*>(b);
    F* C = reinterpret_cast<F*>(c);
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            F sum = 0;
            for (int p = 0; p < k; ++p) {
                F x = opA == N ? A[i + (int64_t)p * lda] : A[p + (int64_t)i * lda];
                F y = opB == N ? B[p + (int64_t)j * ldb] : B[j + (int64_t)p * ldb];
                sum += x * y;
            }
            // beta = 0 must ignore C entirely (it may hold NaN), as cuBLAS does
            F old = *beta == F(0) ? F(0) : *beta * C[i + (int64_t)j * ldc];
            C[i + (int64_t)j * ldc] = *alpha * sum + old;
        }
    return Ok;
}

} // namespace

EXPORT int cublasCreate_v2(void** handle) { *handle = &handleToken; return Ok; }
EXPORT int cublasSetStream_v2(void* handle, void*) { return handle == &handleToken ? Ok : NotInitialized; }

EXPORT int cublasSgemm_v2(void* h, int opA, int opB, int m, int n, int k, const float* alpha, uint64_t a, int lda, uint64_t b,
                          int ldb, const float* beta, uint64_t c, int ldc) {
    return gemm<float>(h, opA, opB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

EXPORT int cublasDgemm_v2(void* h, int opA, int opB, int m, int n, int k, const double* alpha, uint64_t a, int lda, uint64_t b,
                          int ldb, const double* beta, uint64_t c, int ldc) {
    return gemm<double>(h, opA, opB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
