// Flow kernels: the affine transformer, Adam, the rational-quadratic spline and spline knots,
// compiled after Flows.Tensors' common.cuh (i64, GRID_STRIDE, FOR_FLOATS). Each mirrors the CPU code of
// Kernels/Cpu operation for operation, so both backends agree within rounding.

// x*exp(s) + t, or with inverse (x - t)*exp(-s).
#define AFFINE_MAP(S, T) \
extern "C" __global__ void affine_map_##S(i64 n, int inverse, const T* x, const T* t, const T* s, T* r) { \
    GRID_STRIDE(i, n) r[i] = inverse ? (x[i] - t[i]) * exp(-s[i]) : x[i] * exp(s[i]) + t[i]; }
FOR_FLOATS(AFFINE_MAP)

// One Adam/AdamW step with the CPU's constants (Cpu.Fused.adam) precomputed on the host, values below
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

// The rational-quadratic spline from its knots, forward and backward: the arithmetic of the CPU's
// Cpu.Spline module, operation for operation. One thread per element; element e owns knot row e
// (knots entries from e*knots), so the backward needs no atomics.
template <typename T> struct RqPoint { int bin; T x0, w, y0, h, d0, d1, s, raw, xi; };

// The stable root of a t^2 + b t + c: 2c / (-b - sqrt(disc)) where b >= 0, (-b + sqrt(disc)) / 2a
// where b < 0; a non-positive discriminant counts as 0 and each denominator is sanitised.
template <typename T> __device__ __forceinline__ T rq_root(T a, T b, T c) {
    T disc = b * b - (T)4 * a * c;
    T sq = disc > (T)0 ? sqrt(disc) : (T)0;
    if (b >= (T)0) {
        T den = (T)0 - b - sq;
        return (T)2 * c / (den != (T)0 ? den : (T)-1);
    }
    T twoA = a * (T)2;
    return ((T)0 - b + sq) / (twoA != (T)0 ? twoA : (T)1);
}

// The bin of the safe value v in [-B, B] (inner knots at or below it, so the right end lands in
// the last bin) and xi there, clamped to [0, 1].
template <typename T> __device__ __forceinline__ RqPoint<T> rq_locate(const T* xk, const T* yk, const T* ds, i64 at, int bins, int inverse, T v) {
    const T* edges = inverse ? yk : xk;
    int lo = 0, hi = bins - 1;
    while (lo < hi) { int mid = (lo + hi) >> 1; if (edges[at + 1 + mid] <= v) lo = mid + 1; else hi = mid; }
    RqPoint<T> p;
    i64 i = at + lo;
    p.bin = lo; p.x0 = xk[i]; p.w = xk[i + 1] - xk[i]; p.y0 = yk[i]; p.h = yk[i + 1] - yk[i]; p.d0 = ds[i]; p.d1 = ds[i + 1];
    p.s = p.h / p.w;
    if (inverse) {
        T dy = v - p.y0;
        T e = p.d0 + p.d1 - (T)2 * p.s;
        p.raw = rq_root<T>(p.h * (p.s - p.d0) + dy * e, p.h * p.d0 - dy * e, (T)0 - p.s * dy);
    } else p.raw = (v - p.x0) / p.w;
    p.xi = p.raw < (T)0 ? (T)0 : (p.raw > (T)1 ? (T)1 : p.raw);
    return p;
}

// log dy/dx at xi: 2 log s + log(d1 xi^2 + 2 s t + d0 (1-xi)^2) - 2 log(s + (d0 + d1 - 2s) t), t = xi(1-xi)
template <typename T> __device__ __forceinline__ T rq_log_derivative(const RqPoint<T>& p) {
    T xi = p.xi, s = p.s, t = xi * ((T)1 - xi), u = (T)1 - xi;
    T den = s + (p.d0 + p.d1 - (T)2 * s) * t;
    return log(s) * (T)2 + log(p.d1 * (xi * xi) + (T)2 * s * t + p.d0 * (u * u)) - log(den) * (T)2;
}

template <typename T> __device__ __forceinline__ void rq_forward(i64 e, int knots, double bound, int inverse, const T* v, const T* xk, const T* yk, const T* ds, T* mapped, T* logd) {
    T x = v[e], b = (T)bound;
    if (!(x >= (T)0 - b && x <= b)) { mapped[e] = x; logd[e] = (T)0; return; }
    RqPoint<T> p = rq_locate<T>(xk, yk, ds, e * knots, knots - 1, inverse, x);
    if (inverse) {
        mapped[e] = p.x0 + p.xi * p.w;
        logd[e] = (T)0 - rq_log_derivative<T>(p);
    } else {
        T xi = p.xi, s = p.s, t = xi * ((T)1 - xi);
        mapped[e] = p.y0 + p.h * (s * (xi * xi) + p.d0 * t) / (s + (p.d0 + p.d1 - (T)2 * s) * t);
        logd[e] = rq_log_derivative<T>(p);
    }
}

template <typename T> __device__ __forceinline__ void rq_backward(i64 e, int knots, double bound, int inverse, const T* v, const T* xk, const T* yk, const T* ds,
                                                                 const T* gOut, const T* gLog, T* gv, T* gxk, T* gyk, T* gds) {
    const T zero = (T)0, one = (T)1, two = (T)2, four = (T)4;
    i64 at = e * knots;
    for (int j = 0; j < knots; ++j) { gxk[at + j] = zero; gyk[at + j] = zero; gds[at + j] = zero; }
    T x = v[e], b = (T)bound;
    if (!(x >= zero - b && x <= b)) { gv[e] = gOut[e]; return; }
    RqPoint<T> p = rq_locate<T>(xk, yk, ds, at, knots - 1, inverse, x);
    T xi = p.xi, s = p.s, h = p.h, w = p.w, d0 = p.d0, d1 = p.d1;
    T t = xi * (one - xi), u = one - xi;
    T slope = d0 + d1 - two * s;
    T den = s + slope * t;
    T n2 = d1 * (xi * xi) + two * s * t + d0 * (u * u);
    // the log-derivative's adjoint (negated for the inverse, whose output is -log dy/dx)
    T gl = inverse ? zero - gLog[e] : gLog[e];
    T gs = gl * two / s, gN2 = gl / n2, gDen = zero - gl * two / den;
    T gd0 = gN2 * u * u, gd1 = gN2 * xi * xi, gXi = gN2 * (two * d1 * xi - two * d0 * u), gt = gN2 * two * s;
    gs = gs + gN2 * two * t;
    T gx0 = zero, gw = zero, gy0 = zero, gh = zero, gValue = zero;
    if (inverse) {
        gx0 = gOut[e]; gw = gOut[e] * xi; gXi = gXi + gOut[e] * w;
    } else {
        T num = s * (xi * xi) + d0 * t;
        gy0 = gOut[e];
        gh = gOut[e] * num / den;
        T gNum = gOut[e] * h / den;
        gDen = gDen - gOut[e] * h * num / den / den;
        gs = gs + gNum * xi * xi; gd0 = gd0 + gNum * t; gXi = gXi + gNum * two * s * xi; gt = gt + gNum * d0;
    }
    gs = gs + gDen;
    T gSlope = gDen * t;
    gt = gt + gDen * slope;
    gXi = gXi + gt * (one - two * xi);
    T gRaw = (p.raw >= zero && p.raw <= one) ? gXi : zero;
    if (inverse) {
        T dy = x - p.y0;
        T qa = h * (s - d0) + dy * slope, qb = h * d0 - dy * slope, qc = zero - s * dy;
        // the stable root's backward, routed as the composite's where's route it
        T disc = qb * qb - four * qa * qc;
        bool positive = disc > zero;
        T sq = positive ? sqrt(disc) : zero;
        T ga = zero, gb = zero, gc = zero, gsq = zero;
        if (qb >= zero) {
            T d = zero - qb - sq;
            T safe = d != zero ? d : zero - one;
            gc = gRaw * two / safe;
            if (d != zero) { T gd = zero - gRaw * p.raw / safe; gb = gb - gd; gsq = zero - gd; }
        } else {
            T twoA = qa * two;
            T safe = twoA != zero ? twoA : one;
            gb = gb - gRaw / safe; gsq = gRaw / safe;
            if (twoA != zero) ga = ga - two * gRaw * p.raw / safe;
        }
        if (positive) {
            T gDisc = gsq / (two * sq);
            gb = gb + gDisc * two * qb; ga = ga - gDisc * four * qc; gc = gc - gDisc * four * qa;
        }
        gh = gh + ga * (s - d0) + gb * d0;
        gs = gs + ga * h - gc * dy;
        gd0 = gd0 - ga * h + gb * h;
        gSlope = gSlope + (ga - gb) * dy;
        T gDy = (ga - gb) * slope - gc * s;
        gValue = gDy;
        gy0 = gy0 - gDy;
    } else {
        gValue = gRaw / w; gx0 = gx0 - gRaw / w; gw = gw - gRaw * p.raw / w;
    }
    gd0 = gd0 + gSlope; gd1 = gd1 + gSlope; gs = gs - two * gSlope;
    gh = gh + gs / w; gw = gw - gs * s / w;
    gv[e] = gValue;
    i64 i = at + p.bin;
    gxk[i] = gx0 - gw; gxk[i + 1] = gw; gyk[i] = gy0 - gh; gyk[i + 1] = gh; gds[i] = gd0; gds[i + 1] = gd1;
}

#define RQ_SPLINE(S, T) \
extern "C" __global__ void rq_spline_##S(i64 n, int knots, double bound, int inverse, const T* v, const T* xk, const T* yk, const T* ds, T* mapped, T* logd) { \
    GRID_STRIDE(e, n) rq_forward<T>(e, knots, bound, inverse, v, xk, yk, ds, mapped, logd); }
FOR_FLOATS(RQ_SPLINE)

#define RQ_SPLINE_BACKWARD(S, T) \
extern "C" __global__ void rq_spline_backward_##S(i64 n, int knots, double bound, int inverse, const T* v, const T* xk, const T* yk, const T* ds, \
                                                  const T* gOut, const T* gLog, T* gv, T* gxk, T* gyk, T* gds) { \
    GRID_STRIDE(e, n) rq_backward<T>(e, knots, bound, inverse, v, xk, yk, ds, gOut, gLog, gv, gxk, gyk, gds); }
FOR_FLOATS(RQ_SPLINE_BACKWARD)

// A spline's knots from unnormalised bin sizes and their backward: the arithmetic of the CPU's
// Cpu.Knots module (softmax with the row maximum subtracted, sizes min + (1 - K min) p, running
// sum scaled to [-B, B], ends exactly -B and B). One thread per row of K sizes; the exponentials
// are recomputed in each pass, so no per-thread array limits K.
template <typename T> __device__ __forceinline__ T knots_row_max(const T* a, int bins) {
    T m = a[0];
    for (int j = 1; j < bins; ++j) m = nan_max<T>(m, a[j]);
    return m;
}

template <typename T> __device__ __forceinline__ T knots_row_total(const T* a, int bins, T m) {
    T total = (T)0;
    for (int j = 0; j < bins; ++j) total += exp(a[j] - m);
    return total;
}

template <typename T> __device__ __forceinline__ void knots_forward(i64 r, int bins, double bound, double minSize, const T* raw, T* knots) {
    const T* a = raw + r * bins;
    T* k = knots + r * (bins + 1);
    T m = knots_row_max<T>(a, bins), total = knots_row_total<T>(a, bins, m);
    T scale = (T)(1.0 - minSize * bins), least = (T)minSize, width = (T)(2.0 * bound), left = (T)(-bound);
    T running = (T)0;
    k[0] = left;
    for (int j = 0; j < bins - 1; ++j) {
        running += exp(a[j] - m) / total * scale + least;
        k[j + 1] = running * width + left;
    }
    k[bins] = (T)bound;
}

// The running sum's adjoint runs from the right (the last size moves only the fixed right end),
// then the softmax's p (g - <p, g>); the adjoint buffer holds g between the two passes.
template <typename T> __device__ __forceinline__ void knots_backward(i64 r, int bins, double bound, double minSize, const T* raw, const T* knotAdjoint, T* grad) {
    const T* a = raw + r * bins;
    const T* gk = knotAdjoint + r * (bins + 1);
    T* ga = grad + r * bins;
    T m = knots_row_max<T>(a, bins), total = knots_row_total<T>(a, bins, m);
    T scale = (T)(1.0 - minSize * bins), width = (T)(2.0 * bound);
    T running = (T)0, dot = (T)0;
    for (int j = bins - 1; j >= 0; --j) {
        if (j < bins - 1) running += gk[j + 1] * width;
        T g = running * scale;
        ga[j] = g;
        dot += exp(a[j] - m) / total * g;
    }
    for (int j = 0; j < bins; ++j) ga[j] = exp(a[j] - m) / total * (ga[j] - dot);
}

#define SPLINE_KNOTS(S, T) \
extern "C" __global__ void spline_knots_##S(i64 rows, int bins, double bound, double minSize, const T* raw, T* knots) { \
    GRID_STRIDE(r, rows) knots_forward<T>(r, bins, bound, minSize, raw, knots); }
FOR_FLOATS(SPLINE_KNOTS)

#define SPLINE_KNOTS_BACKWARD(S, T) \
extern "C" __global__ void spline_knots_backward_##S(i64 rows, int bins, double bound, double minSize, const T* raw, const T* knotAdjoint, T* grad) { \
    GRID_STRIDE(r, rows) knots_backward<T>(r, bins, bound, minSize, raw, knotAdjoint, grad); }
FOR_FLOATS(SPLINE_KNOTS_BACKWARD)
