/*
 * Gaussian noise kernels of the Monte-Carlo crossbar simulator (evaluators/cim).
 *
 * Why this file exists: the simulator draws ~1 M Gaussians per chip instance (programming
 * noise per cell, read noise per ADC conversion). torch's CPU normal_ walks one Mersenne
 * Twister stream element by element (~2.6-4.4 ns per draw measured on the project's
 * 2-core machine) and was more than half of the simulation time. Here:
 *
 *  - xoshiro128++ (Blackman & Vigna, "Scrambled linear pseudorandom number generators",
 *    ACM TOMS 47(4), 2021; passes BigCrush), run as LANES independent generators side by
 *    side so that the compiler vectorises the update (adds, xors, shifts, rotates only:
 *    ~0.07 ns per 32-bit word). Every call is one sub-stream: the lanes are seeded from
 *    (key, stream) with SplitMix64 (Steele, Lea & Flood, OOPSLA 2014), the seeding the
 *    xoshiro authors recommend. A call's output depends only on (key, stream, length),
 *    so simulation blocks draw independently on any thread, in any order.
 *    (A counter-based Philox4x32-10 was measured first: 0.66 ns per word, which made
 *    the generator, not the transform, the cost.)
 *  - Box-Muller (Box & Muller, Ann. Math. Statist. 29(2), 1958) on 24-bit uniforms, with
 *    its log, sin and cos as short series in plain float32 arithmetic (normal_block):
 *    branch-free, vectorised, ~0.36 ns per Gaussian per core in all, and — compiled
 *    with -ffp-contract=off, without -ffast-math or a vendor math library — the same
 *    bits on every CPU, so a seed reproduces across a heterogeneous cluster. (glibc's
 *    libmvec under -ffast-math was measured first: 0.55 ns, and its results depend on
 *    which vector variant the CPU gets.)
 *  - Fused passes over a cache-resident block: read noise + ADC of partial sums; the
 *    clipped differential pair of a programmed cell.
 *
 * Compiled on first use by evaluators/cim/native_rng.py (cc -O3 -march=native
 * -ffp-contract=off -fno-math-errno); without a C compiler the simulator falls back to
 * torch's generators.
 * No Python headers: called through ctypes, which releases the GIL during the call.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LANES 64          /* generators side by side (vector-friendly) */
#define BLOCK (4 * LANES) /* words (and Gaussians) per block */
#define INV24 (1.0f / 16777216.0f)
#define HALF_PI 1.57079632679489661923f

typedef struct {
    uint32_t s[4][LANES];
} lanes_t;

static inline uint64_t splitmix64_next(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Lane l of sub-stream (key, stream): state words from SplitMix64 started at
 * key ^ splitmix64(stream), two 64-bit outputs per lane, lanes in order. */
static void lanes_seed(lanes_t *st, uint64_t key, uint64_t stream) {
    uint64_t t = stream;
    uint64_t sm = key ^ splitmix64_next(&t);
    for (int l = 0; l < LANES; ++l) {
        uint64_t a = splitmix64_next(&sm), b = splitmix64_next(&sm);
        st->s[0][l] = (uint32_t)a;
        st->s[1][l] = (uint32_t)(a >> 32);
        st->s[2][l] = (uint32_t)b;
        st->s[3][l] = (uint32_t)(b >> 32);
        if (!(st->s[0][l] | st->s[1][l] | st->s[2][l] | st->s[3][l])) st->s[0][l] = 1u;
    }
}

static inline float clampf(float v, float lo, float hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline uint32_t rotl32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

/* Next BLOCK words: w[j·LANES + l] = j-th next output of lane l (xoshiro128++). */
static inline void lanes_next(lanes_t *restrict st, uint32_t *restrict w) {
    uint32_t *restrict s0 = st->s[0], *restrict s1 = st->s[1];
    uint32_t *restrict s2 = st->s[2], *restrict s3 = st->s[3];
    for (int j = 0; j < 4; ++j) {
        for (int l = 0; l < LANES; ++l) {
            uint32_t a = s0[l], b = s1[l], c = s2[l], d = s3[l];
            w[j * LANES + l] = rotl32(a + d, 7) + a;
            const uint32_t t = b << 9;
            c ^= a;
            d ^= b;
            b ^= c;
            a ^= d;
            c ^= t;
            d = rotl32(d, 11);
            s0[l] = a;
            s1[l] = b;
            s2[l] = c;
            s3[l] = d;
        }
    }
}

/* Raw words of sub-stream (key, stream), for tests against a reference xoshiro128++. */
void cim_words_u32(uint32_t *restrict out, int64_t n, uint64_t key, uint64_t stream) {
    lanes_t st;
    uint32_t w[BLOCK];
    lanes_seed(&st, key, stream);
    for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {
        lanes_next(&st, w);
        const int64_t m = n - b0 < BLOCK ? n - b0 : BLOCK;
        memcpy(out + b0, w, (size_t)m * sizeof(uint32_t));
    }
}

static inline float bits_to_float(uint32_t b) {
    union {
        uint32_t u;
        float f;
    } v = {b};
    return v.f;
}

static inline uint32_t float_to_bits(float f) {
    union {
        float f;
        uint32_t u;
    } v = {f};
    return v.u;
}

/* ln(u) for normal positive floats, with float32 +, −, ×, ÷ only: u = m·2^e with
 * m in [√½, √2), ln m = 2·atanh(t) = 2(t + t³/3 + … + t⁹/9), t = (m − 1)/(m + 1),
 * |t| ≤ 0.172 so the next term is < 1e-8 (series: Abramowitz & Stegun 4.1.28). */
static inline float log_pos(float u) {
    const uint32_t b = float_to_bits(u);
    float e = (float)((int32_t)(b >> 23) - 127);
    float m = bits_to_float((b & 0x007FFFFFu) | 0x3F800000u); /* [1, 2) */
    const int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1.0f : e;
    const float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    float p = t2 * (1.0f / 9.0f) + (1.0f / 7.0f);
    p = p * t2 + (1.0f / 5.0f);
    p = p * t2 + (1.0f / 3.0f);
    p = p * t2 + 1.0f;
    return 2.0f * t * p + e * 0.693147180559945f;
}

/* Next BLOCK standard normals: Box-Muller, N1 = R cos θ, N2 = R sin θ with
 * R = √(−2 ln u1) and θ = 2π·u2 taken from the 32-bit word itself: the top two bits give
 * the quadrant, the next 22 the angle φ in [0, π/2), where Taylor polynomials of sin and
 * cos to φ¹¹ / φ¹² are within 6e-8 (Abramowitz & Stegun 4.3.65-66).
 * Only IEEE float32 +, −, ×, ÷, √ and selects, compiled without -ffast-math and with
 * -ffp-contract=off: the same bits on every x86/ARM CPU and vector width (checked against
 * a NumPy float32 replica in tests), unlike vendor math libraries. */
static inline void normal_block(float *restrict o, lanes_t *restrict st) {
    uint32_t w[BLOCK];
    lanes_next(st, w);
    for (int l = 0; l < 2 * LANES; ++l) {
        const float u1 = ((float)(w[l] >> 8) + 0.5f) * INV24; /* (0, 1): log is finite */
        const uint32_t a = w[2 * LANES + l];
        const uint32_t q = a >> 30;
        const float phi = ((float)((a >> 8) & 0x3FFFFFu) + 0.5f) * (HALF_PI / 4194304.0f);
        const float p2 = phi * phi;
        float sn = p2 * (-1.0f / 39916800.0f) + (1.0f / 362880.0f);
        sn = sn * p2 + (-1.0f / 5040.0f);
        sn = sn * p2 + (1.0f / 120.0f);
        sn = sn * p2 + (-1.0f / 6.0f);
        sn = (sn * p2 + 1.0f) * phi;
        float cs = p2 * (1.0f / 479001600.0f) + (-1.0f / 3628800.0f);
        cs = cs * p2 + (1.0f / 40320.0f);
        cs = cs * p2 + (-1.0f / 720.0f);
        cs = cs * p2 + (1.0f / 24.0f);
        cs = cs * p2 + (-1.0f / 2.0f);
        cs = cs * p2 + 1.0f;
        /* θ = q·π/2 + φ: cos θ = (c, −s, −c, s)[q], sin θ = (s, c, −s, −c)[q] */
        const float c1 = (q & 1u) ? sn : cs, s1 = (q & 1u) ? cs : sn;
        const float cos_t = (q == 1u || q == 2u) ? -c1 : c1;
        const float sin_t = (q >= 2u) ? -s1 : s1;
        const float rad = sqrtf(-2.0f * log_pos(u1));
        o[l] = rad * cos_t;
        o[2 * LANES + l] = rad * sin_t;
    }
}

/* out[i] = mean + std·N_i for i < n: the first n Gaussians of sub-stream (key, stream). */
void cim_normal_f32(float *restrict out, int64_t n, uint64_t key, uint64_t stream, float mean,
                    float std) {
    lanes_t st;
    float buf[BLOCK];
    lanes_seed(&st, key, stream);
    for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {
        const int64_t m = n - b0 < BLOCK ? n - b0 : BLOCK;
        normal_block(buf, &st);
        for (int64_t i = 0; i < m; ++i) out[b0 + i] = mean + std * buf[i];
    }
}

/* out[i] = U_i in [0, 1) (24-bit): the first n words of sub-stream (key, stream). */
void cim_uniform_f32(float *restrict out, int64_t n, uint64_t key, uint64_t stream) {
    lanes_t st;
    uint32_t w[BLOCK];
    lanes_seed(&st, key, stream);
    for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {
        const int64_t m = n - b0 < BLOCK ? n - b0 : BLOCK;
        lanes_next(&st, w);
        for (int64_t i = 0; i < m; ++i) out[b0 + i] = (float)(w[i] >> 8) * INV24;
    }
}

/*
 * Read noise and ADC of one block of partial sums, in place.
 *
 * z: (rows, cols) contiguous partial sums (level units). For element (r, c), flat index
 * i = r·cols + c:  v = z[i] + row_std[r]·N_i   (N_i: Gaussian i of the sub-stream;
 *                                              row_std NULL: no read noise)
 *                  z[i] = adc ? rint(clamp(v / step, lo, hi)) : v
 * Clamping to integer bounds before rounding equals rounding then clamping; rint rounds
 * half to even like torch.round.
 */
void cim_read_adc_f32(float *restrict z, int64_t rows, int64_t cols,
                      const float *restrict row_std, int adc, float step, float lo,
                      float hi, uint64_t key, uint64_t stream) {
    const int64_t n = rows * cols;
    lanes_t st;
    float buf[BLOCK];
    if (row_std) lanes_seed(&st, key, stream);
    for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {
        const int64_t e = n - b0 < BLOCK ? n : b0 + BLOCK;
        if (row_std) normal_block(buf, &st);
        int64_t i = b0, r = b0 / cols;
        while (i < e) {
            const int64_t row_end = (r + 1) * cols, seg = row_end < e ? row_end : e;
            float *restrict zz = z + i;
            const float *restrict nn = buf + (i - b0);
            const int64_t len = seg - i;
            if (row_std) {
                const float s = row_std[r];
                if (adc)
                    for (int64_t j = 0; j < len; ++j)
                        zz[j] = rintf(clampf((zz[j] + s * nn[j]) / step, lo, hi));
                else
                    for (int64_t j = 0; j < len; ++j) zz[j] += s * nn[j];
            } else if (adc) {
                for (int64_t j = 0; j < len; ++j) zz[j] = rintf(clampf(zz[j] / step, lo, hi));
            }
            i = seg;
            ++r;
        }
    }
}

/*
 * Differential-pair programming with clipping at G = 0 (cells whose g_min is within a few
 * σ of zero), for `inst` chip instances at once:
 *   dst[s, i] = scale·(max(0, pos[i] + σ·N) − max(0, neg[i] + σ·N'))
 * pos/neg: (n,) target conductances (range units) shared by all instances; dst: (inst, n).
 * Gaussians of the sub-stream in order: G⁺ of (s, i) is number 2·(s·n + i), G⁻ the next.
 */
void cim_program_pairs_f32(float *restrict dst, const float *restrict pos,
                           const float *restrict neg, int64_t inst, int64_t n, float sigma,
                           float scale, uint64_t key, uint64_t stream) {
    lanes_t st;
    float buf[BLOCK];
    const int64_t total = inst * n * 2; /* Gaussians */
    lanes_seed(&st, key, stream);
    for (int64_t b0 = 0; b0 < total; b0 += BLOCK) {
        normal_block(buf, &st);
        const int64_t e = total - b0 < BLOCK ? total : b0 + BLOCK;
        /* pairs p = b0/2 .. e/2 - 1 (BLOCK is even, so blocks hold whole pairs) */
        int64_t p = b0 / 2;
        const int64_t pe = e / 2;
        while (p < pe) {
            const int64_t i0 = p % n, row_end = p - i0 + n, seg = row_end < pe ? row_end : pe;
            const int64_t len = seg - p;
            const float *restrict nb = buf + 2 * (p - b0 / 2);
            const float *restrict tp = pos + i0;
            const float *restrict tn = neg + i0;
            float *restrict d = dst + p;
            for (int64_t j = 0; j < len; ++j) {
                const float vp = tp[j] + sigma * nb[2 * j], vn = tn[j] + sigma * nb[2 * j + 1];
                const float gp = vp > 0.0f ? vp : 0.0f, gn = vn > 0.0f ? vn : 0.0f;
                d[j] = scale * (gp - gn);
            }
            p = seg;
        }
    }
}

/*
 * cim_program_pairs_f32 for one instance, shift-and-added over weight slices on the fly
 * (the no-ADC path, where slices combine linearly): with d the (rows, slices·cols) result
 * of cim_program_pairs_f32 (inst = 1, n = rows·slices·cols, same sub-stream, same
 * Gaussians in the same order),
 *   dst[r, c] = Σ_k slice_w[k]·d[r, k·cols + c]   (k = 0: a product; k ≥ 1: fmaf, the
 *                                                 rounding of torch's add(alpha=) pass)
 * row by row through `work` (slices·cols floats), so the sliced tensor never exists.
 */
void cim_program_pairs_combined_f32(float *restrict dst, const float *restrict pos,
                                    const float *restrict neg, int64_t rows, int64_t slices,
                                    int64_t cols, const float *restrict slice_w,
                                    float sigma, float scale, float *restrict work,
                                    uint64_t key, uint64_t stream) {
    lanes_t st;
    float buf[BLOCK];
    const int64_t width = slices * cols; /* pairs per row */
    int64_t bi = BLOCK;                  /* next unused Gaussian of buf */
    lanes_seed(&st, key, stream);
    for (int64_t r = 0; r < rows; ++r) {
        const float *restrict tp = pos + r * width;
        const float *restrict tn = neg + r * width;
        int64_t j = 0;
        while (j < width) {
            if (bi == BLOCK) {
                normal_block(buf, &st);
                bi = 0;
            }
            int64_t len = (BLOCK - bi) / 2;
            if (len > width - j) len = width - j;
            const float *restrict nb = buf + bi;
            float *restrict d = work + j;
            for (int64_t i = 0; i < len; ++i) {
                const float vp = tp[j + i] + sigma * nb[2 * i];
                const float vn = tn[j + i] + sigma * nb[2 * i + 1];
                const float gp = vp > 0.0f ? vp : 0.0f, gn = vn > 0.0f ? vn : 0.0f;
                d[i] = scale * (gp - gn);
            }
            j += len;
            bi += 2 * len;
        }
        float *restrict o = dst + r * cols;
        const float w0 = slice_w[0];
        for (int64_t c = 0; c < cols; ++c) o[c] = work[c] * w0;
        for (int64_t k = 1; k < slices; ++k) {
            const float wk = slice_w[k];
            const float *restrict dk = work + k * cols;
            for (int64_t c = 0; c < cols; ++c) o[c] = fmaf(dk[c], wk, o[c]);
        }
    }
}
