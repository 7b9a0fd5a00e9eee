// Fused kernels of dense layers: bias + activation on a fresh GEMM output and the activation's
// backward from its output.
// Activation codes: 0 identity, 1 tanh, 2 sigmoid, 3 relu, 4 leaky relu(p), 5 softplus, 6 elu(p).

template <typename T> __device__ __forceinline__ T activate(int act, T x, double p) {
    const T zero = (T)0, one = (T)1;
    switch (act) {
    case 1: return tanh(x);
    case 2: return one / (one + exp(-x));
    case 3: return x > zero ? x : zero;
    case 4: return x > zero ? x : (T)p * x;
    case 5: return (x > zero ? x : zero) + log1p(exp(-fabs(x)));
    case 6: return x > zero ? x : (T)p * expm1(x < zero ? x : zero);
    default: return x;
    }
}

// The derivative times the adjoint g, written with the activation's output y.
template <typename T> __device__ __forceinline__ T activate_grad(int act, T y, T g, double p) {
    const T zero = (T)0, one = (T)1;
    switch (act) {
    case 1: return g * (one - y * y);
    case 2: return g * y * (one - y);
    case 3: return y > zero ? g : zero;
    case 4: return y > zero ? g : g * (T)p;
    case 5: return -(expm1(-y) * g);
    case 6: return y > zero ? g : g * (y + (T)p);
    default: return g;
    }
}

// r[row, j] = act(r[row, j] + bias[j]) in place on an [n, m] GEMM result; hasBias = 0: no bias.
#define BIAS_ACTIVATION(S, T) \
extern "C" __global__ void bias_activation_##S(i64 total, int m, int act, double p, int hasBias, const T* bias, T* r) { \
    GRID_STRIDE(i, total) { \
        T v = r[i]; \
        if (hasBias) v += bias[i % m]; \
        r[i] = activate<T>(act, v, p); } }
FOR_FLOATS(BIAS_ACTIVATION)

#define ACTIVATION_GRAD(S, T) \
extern "C" __global__ void activation_grad_##S(i64 n, int act, double p, const T* y, const T* g, T* r) { \
    GRID_STRIDE(i, n) r[i] = activate_grad<T>(act, y[i], g[i], p); }
FOR_FLOATS(ACTIVATION_GRAD)
