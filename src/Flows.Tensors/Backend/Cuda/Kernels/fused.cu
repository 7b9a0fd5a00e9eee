// Fused kernels where flows spend their time: bias + activation on a fresh GEMM output, the
// activation's backward from its output, the affine transformer and the Adam update.
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

// x*exp(s) + t, or with inverse (x - t)*exp(-s).
#define AFFINE_MAP(S, T) \
extern "C" __global__ void affine_map_##S(i64 n, int inverse, const T* x, const T* t, const T* s, T* r) { \
    GRID_STRIDE(i, n) r[i] = inverse ? (x[i] - t[i]) * exp(-s[i]) : x[i] * exp(s[i]) + t[i]; }
FOR_FLOATS(AFFINE_MAP)

// One Adam/AdamW step with the CPU's constants (Fused.adam) precomputed on the host, values below
// `tiny` flushed to zero as there.
#define ADAM(S, T) \
extern "C" __global__ void adam_##S(i64 n, double b1, double b2, double c1, double c2, double stepSize, double correction2, \
                                    double eps, double coupledDecay, double shrink, double tiny, \
                                    const T* w, const T* g, const T* m, const T* v, T* w2, T* m2, T* v2) { \
    GRID_STRIDE(i, n) { \
        T grad = g[i] + (T)coupledDecay * w[i]; \
        T mi = (T)b1 * m[i] + (T)c1 * grad; if (fabs(mi) < (T)tiny) mi = (T)0; \
        T vi = (T)b2 * v[i] + (T)c2 * grad * grad; if (fabs(vi) < (T)tiny) vi = (T)0; \
        T wi = (T)shrink * w[i] - (T)stepSize * mi / (sqrt(vi / (T)correction2) + (T)eps); if (fabs(wi) < (T)tiny) wi = (T)0; \
        m2[i] = mi; v2[i] = vi; w2[i] = wi; } }
FOR_FLOATS(ADAM)
