// The counter-based generator of Backend/Counter.fs: element i draws from counters offset + 2i
// (and offset + 2i + 1 for Box-Muller). The integer hash and the uniform are bit-identical to the
// CPU; normals go through the device's double log/cos/sqrt (within an ulp or two of .NET's).

__device__ __forceinline__ u64 counter_bits(u64 seed, u64 counter) {
    u64 z = seed + (counter + 1ULL) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

__device__ __forceinline__ double counter_unit(u64 seed, u64 counter) {
    return ((double)(counter_bits(seed, counter) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// kind: 0 uniform(a, b), 1 normal(mean a, std b), 2 Rademacher, 3 Bernoulli(a), 4 integers [a, b).
__device__ __forceinline__ double draw(int kind, double a, double b, u64 seed, u64 offset, u64 i) {
    switch (kind) {
    case 0: return a + (b - a) * counter_unit(seed, offset + 2ULL * i);
    case 1: {
        double u1 = counter_unit(seed, offset + 2ULL * i), u2 = counter_unit(seed, offset + 2ULL * i + 1ULL);
        return a + b * (sqrt(-2.0 * log(u1)) * cos(2.0 * 3.141592653589793 * u2)); }
    case 2: return (counter_bits(seed, offset + 2ULL * i) & 1ULL) == 0ULL ? 1.0 : -1.0;
    case 3: return counter_unit(seed, offset + 2ULL * i) < a ? 1.0 : 0.0;
    default: return a + floor(counter_unit(seed, offset + 2ULL * i) * (b - a));
    }
}

extern "C" __global__ void random_f64(int kind, double a, double b, u64 seed, u64 offset, i64 n, double* r) {
    GRID_STRIDE(i, n) r[i] = draw(kind, a, b, seed, offset, (u64)i);
}

// Rounding to float32 can carry a uniform draw up to `b`: keep it inside [a, b) as the CPU does.
extern "C" __global__ void random_f32(int kind, double a, double b, u64 seed, u64 offset, i64 n, float* r) {
    GRID_STRIDE(i, n) {
        float v = (float)draw(kind, a, b, seed, offset, (u64)i);
        if (kind == 0 && v >= (float)b) v = nextafterf((float)b, -INFINITY);
        r[i] = v; }
}

extern "C" __global__ void random_i32(int kind, double a, double b, u64 seed, u64 offset, i64 n, int* r) {
    GRID_STRIDE(i, n) r[i] = (int)draw(kind, a, b, seed, offset, (u64)i);
}
