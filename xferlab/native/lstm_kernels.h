// The LSTM and GRU loops for one instruction set; included once per set by lstm_avx512.cc,
// lstm_avx2.cc and lstm_generic.cc, each under its own `#pragma GCC target`, namespace
// (XFERLAB_NS), vector width in floats (XFERLAB_VEC) and rows per register block
// (XFERLAB_ROWS). lstm_loop.cc picks one at run time from the CPU's features.
//
// Threads split the hidden units, not the batch: thread k owns units [u0, u1) and
// computes their four gates for every row, so the recurrent weights are read once per
// step in all (each thread packs its own columns of W_h once per call, contiguous in
// strips of 2 vectors, which the register-blocked matmul streams). One barrier per time
// step publishes the new h (forward) or all of dz_t (backward) to the other threads.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "lstm_loop.h"

namespace xferlab_native {
namespace XFERLAB_NS {

constexpr int kVec = XFERLAB_VEC;         // floats per vector register
constexpr int kStrip = 2 * kVec;          // packed columns per strip
constexpr int kRows = XFERLAB_ROWS;       // rows per register block
typedef float Vec __attribute__((vector_size(kVec * sizeof(float))));
typedef float UnalignedVec __attribute__((vector_size(kVec * sizeof(float)), aligned(4)));

// exp, the logistic sigmoid and tanh as branch-free float arithmetic, which the compiler
// inlines and vectorizes in the gate loops (a libm call per vector cost more than the
// gates' matmul). exp: x = n ln2 + r, 2^n by the exponent bits, e^r by a degree-6
// polynomial; relative error about 2e-7 over the clamped range.
inline float fast_exp(float x) {
  x = std::fmin(std::fmax(x, -87.0f), 88.0f);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693145751953125f - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &p, sizeof(bits));
  bits += static_cast<int32_t>(n) << 23;
  std::memcpy(&p, &bits, sizeof(p));
  return p;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

inline float fast_tanh(float x) { return 2.0f / (1.0f + fast_exp(-2.0f * x)) - 1.0f; }

// Packs the [depth, width] matrix get(k, c) into strips: strip s holds columns
// [s*kStrip, (s+1)*kStrip) for every k, zero-padded past `width`.
template <typename Get>
std::vector<float> pack(int64_t depth, int64_t width, Get get) {
  const int64_t strips = (width + kStrip - 1) / kStrip;
  std::vector<float> packed(strips * depth * kStrip, 0.0f);
  for (int64_t s = 0; s < strips; ++s)
    for (int64_t k = 0; k < depth; ++k)
      for (int64_t j = 0; j < kStrip && s * kStrip + j < width; ++j)
        packed[(s * depth + k) * kStrip + j] = get(k, s * kStrip + j);
  return packed;
}

// c[R, width] += a[R, depth] · (one packed strip), R rows at once in registers.
template <int R>
inline void strip_block(const float* a, int64_t lda, int64_t depth, const float* strip, float* c,
                        int64_t ldc, int64_t width) {
  Vec acc[R][2] = {};
  for (int64_t k = 0; k < depth; ++k) {
    const Vec w0 = *reinterpret_cast<const UnalignedVec*>(strip + k * kStrip);
    const Vec w1 = *reinterpret_cast<const UnalignedVec*>(strip + k * kStrip + kVec);
    for (int r = 0; r < R; ++r) {
      const float x = a[r * lda + k];
      acc[r][0] += x * w0;
      acc[r][1] += x * w1;
    }
  }
  for (int r = 0; r < R; ++r) {
    float out[kStrip];
    std::memcpy(out, &acc[r][0], sizeof(Vec));
    std::memcpy(out + kVec, &acc[r][1], sizeof(Vec));
    for (int64_t j = 0; j < width; ++j) c[r * ldc + j] += out[j];
  }
}

template <int R>
void tail_block(int rows, const float* a, int64_t lda, int64_t depth, const float* strip,
                float* c, int64_t ldc, int64_t width) {
  if constexpr (R > 0) {
    if (rows == R) return strip_block<R>(a, lda, depth, strip, c, ldc, width);
    tail_block<R - 1>(rows, a, lda, depth, strip, c, ldc, width);
  }
}

// c[rows, width] += a[rows, depth] · packed[depth, width] (row strides lda, ldc).
void matmul(const float* a, int64_t lda, int64_t rows, int64_t depth,
            const std::vector<float>& packed, int64_t width, float* c, int64_t ldc) {
  const int64_t strips = (width + kStrip - 1) / kStrip;
  for (int64_t s = 0; s < strips; ++s) {
    const float* strip = packed.data() + s * depth * kStrip;
    const int64_t w = std::min<int64_t>(kStrip, width - s * kStrip);
    int64_t r = 0;
    for (; r + kRows <= rows; r += kRows)
      strip_block<kRows>(a + r * lda, lda, depth, strip, c + r * ldc + s * kStrip, ldc, w);
    if (r < rows)
      tail_block<kRows - 1>(static_cast<int>(rows - r), a + r * lda, lda, depth, strip,
                            c + r * ldc + s * kStrip, ldc, w);
  }
}

// A reusable barrier for the threads of one call: spins briefly, then yields (several
// calls may share the cores, e.g. one per virtual CPU device).
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    if (n_ == 1) return;
    const int generation = generation_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins)
      if (spins > 2000) std::this_thread::yield();
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> generation_{0};
};

// Runs body(thread, u0, u1) on `threads` threads, thread k owning units [u0, u1).
template <typename Body>
void over_units(int threads, int64_t hidden, Body body) {
  std::vector<std::thread> workers;
  int64_t start = 0;
  std::vector<int64_t> bounds = {0};
  for (int k = 0; k < threads; ++k) {
    start += hidden / threads + (k < hidden % threads ? 1 : 0);
    bounds.push_back(start);
  }
  for (int k = 1; k < threads; ++k) workers.emplace_back(body, k, bounds[k], bounds[k + 1]);
  body(0, bounds[0], bounds[1]);
  for (auto& w : workers) w.join();
}

// The forward loop both cells share. Thread k owns units [u0, u1) of each of the `gates`
// gate blocks; per step it fills z[B, gates*U] with init(t, u0, U, z) (the step's
// additive inputs), adds h_{t-1} W_h[:, its columns] (column g*U + u of its block is
// column g*H + u0 + u of W_h), and hands z to rows(t, u0, U, z, h, h_next), which writes
// its units of h_t into h_next; one barrier then publishes h_next to every thread.
template <typename Init, typename Rows>
void forward_steps(const LstmShapes& s, int gates, const float* kernel, const float* h0,
                   float* h_T, Init init, Rows rows) {
  const int64_t T = s.time, B = s.batch, H = s.hidden, G = gates * H;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(s.threads, H)));
  std::vector<float> h_buffers(2 * B * H);
  std::memcpy(h_buffers.data(), h0, sizeof(float) * B * H);
  Barrier barrier(threads);
  over_units(threads, H, [&](int, int64_t u0, int64_t u1) {
    const int64_t U = u1 - u0, width = gates * U;
    const auto weights = pack(H, width, [&](int64_t k, int64_t c) {
      return kernel[k * G + (c / U) * H + u0 + c % U];
    });
    std::vector<float> z(B * width);
    for (int64_t t = 0; t < T; ++t) {
      const float* h = h_buffers.data() + (t % 2) * B * H;
      float* h_next = h_buffers.data() + ((t + 1) % 2) * B * H;
      init(t, u0, U, z.data());
      matmul(h, H, B, H, weights, width, z.data(), width);
      rows(t, u0, U, z.data(), h, h_next);
      barrier.wait();   // h_next is complete: every thread reads all of it next step
    }
  });
  std::memcpy(h_T, h_buffers.data() + (T % 2) * B * H, sizeof(float) * B * H);
}

// The reverse loop both cells share. Per step t (last first), rows(t, u0, U) writes the
// thread's units of every gate's gradient d_gates[:, t, :] (batch-major [B, T, G]) and of
// the carry's gradient d_h[B, H] through the gates; one barrier, then each thread adds
// d_gates[:, t, :] · W_hᵀ[:, its units] to its units of d_h (the path through W_h).
template <typename Rows>
void reverse_steps(const LstmShapes& s, int gates, const float* kernel, const float* d_gates,
                   float* d_h, Rows rows) {
  const int64_t T = s.time, B = s.batch, H = s.hidden, G = gates * H;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(s.threads, H)));
  Barrier barrier(threads);
  over_units(threads, H, [&](int, int64_t u0, int64_t u1) {
    const int64_t U = u1 - u0;
    // d h_{t-1}[units] = dz_t · W_hᵀ[:, units]: this thread's rows of W_h, transposed.
    const auto weights_t = pack(G, U, [&](int64_t k, int64_t c) {
      return kernel[(u0 + c) * G + k];
    });
    for (int64_t t = T - 1; t >= 0; --t) {
      rows(t, u0, U);
      barrier.wait();   // all of dz_t is written: every thread reads all of it
      matmul(d_gates + t * G, T * G, B, G, weights_t, U, d_h + u0, H);
    }
  });
}

void forward(const LstmShapes& s, const LstmForwardArgs& x) {
  const int64_t T = s.time, B = s.batch, H = s.hidden, G = 4 * H;
  std::memcpy(x.c_T, x.c0, sizeof(float) * B * H);
  auto init = [&](int64_t t, int64_t u0, int64_t U, float* z) {
    for (int64_t r = 0; r < B; ++r)
      for (int g = 0; g < 4; ++g)
        for (int64_t u = 0; u < U; ++u) {
          const int64_t col = g * H + u0 + u;
          z[r * 4 * U + g * U + u] = x.projected[(r * T + t) * G + col] + x.bias[col];
        }
  };
  auto rows = [&](int64_t t, int64_t u0, int64_t U, const float* z, const float* h,
                  float* h_next) {
    for (int64_t r = 0; r < B; ++r) {
      const int64_t row = r * T + t;
      const float* zr = z + r * 4 * U;
      float* c = x.c_T + r * H + u0;
      const int64_t step_row = t * B + r;   // the private arrays are time-major
      std::memcpy(x.previous_c + step_row * H + u0, c, sizeof(float) * U);
      std::memcpy(x.previous_h + row * H + u0, h + r * H + u0, sizeof(float) * U);
      for (int g = 0; g < 4; ++g)
        std::memcpy(x.saved + step_row * G + g * H + u0, zr + g * U, sizeof(float) * U);
      float* out = x.outputs + row * H + u0;
      float* hn = h_next + r * H + u0;
      if (!x.mask[row]) {   // a padded step: the carry stays, the output is zero
        std::memset(out, 0, sizeof(float) * U);
        std::memcpy(hn, h + r * H + u0, sizeof(float) * U);
        continue;
      }
      const float *zi = zr, *zf = zr + U, *zg = zr + 2 * U, *zo = zr + 3 * U;
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        const float cu = sigmoid(zf[u]) * c[u] + sigmoid(zi[u]) * fast_tanh(zg[u]);
        const float hu = sigmoid(zo[u]) * fast_tanh(cu);
        c[u] = cu;
        hn[u] = hu;
        out[u] = hu;
      }
    }
  };
  forward_steps(s, 4, x.kernel, x.h0, x.h_T, init, rows);
}

void backward(const LstmShapes& s, const LstmBackwardArgs& x) {
  const int64_t T = s.time, B = s.batch, H = s.hidden, G = 4 * H;
  std::memcpy(x.d_c0, x.d_cT, sizeof(float) * B * H);
  std::memcpy(x.d_h0, x.d_hT, sizeof(float) * B * H);
  reverse_steps(s, 4, x.kernel, x.d_saved, x.d_h0, [&](int64_t t, int64_t u0, int64_t U) {
    for (int64_t r = 0; r < B; ++r) {
      const int64_t row = r * T + t;
      float* dz = x.d_saved + row * G;
      float* dh = x.d_h0 + r * H + u0;
      float* dc = x.d_c0 + r * H + u0;
      if (!x.mask[row]) {   // a padded step: the carry's gradient passes through
        for (int g = 0; g < 4; ++g) std::memset(dz + g * H + u0, 0, sizeof(float) * U);
        continue;
      }
      const float* z = x.saved + (t * B + r) * G;
      const float *zi = z + u0, *zf = z + H + u0, *zg = z + 2 * H + u0, *zo = z + 3 * H + u0;
      const float* c_prev = x.previous_c + (t * B + r) * H + u0;
      const float* d_out = x.d_outputs + row * H + u0;
      float *dzi = dz + u0, *dzf = dz + H + u0, *dzg = dz + 2 * H + u0, *dzo = dz + 3 * H + u0;
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        const float i = sigmoid(zi[u]), f = sigmoid(zf[u]), g = fast_tanh(zg[u]),
                    o = sigmoid(zo[u]);
        const float c = f * c_prev[u] + i * g, tc = fast_tanh(c);
        const float dhu = dh[u] + d_out[u];
        const float dcu = dc[u] + dhu * o * (1.0f - tc * tc);
        dzi[u] = dcu * g * i * (1.0f - i);
        dzf[u] = dcu * c_prev[u] * f * (1.0f - f);
        dzg[u] = dcu * i * (1.0f - g * g);
        dzo[u] = dhu * tc * o * (1.0f - o);
        dc[u] = dcu * f;
        dh[u] = 0.0f;   // h_{t-1} reaches h_t only through W_h: added after the barrier
      }
    }
  });
}

// The GRU: gates r, z, n in that order; hidden = h_{t-1} W_h + b_h is saved whole, since the
// reset gate scales only its n part.
void gru_forward(const LstmShapes& s, const GruForwardArgs& x) {
  const int64_t T = s.time, B = s.batch, H = s.hidden, G = 3 * H;
  auto init = [&](int64_t, int64_t u0, int64_t U, float* z) {
    for (int64_t r = 0; r < B; ++r)
      for (int g = 0; g < 3; ++g)
        for (int64_t u = 0; u < U; ++u) z[r * 3 * U + g * U + u] = x.bias[g * H + u0 + u];
  };
  auto rows = [&](int64_t t, int64_t u0, int64_t U, const float* z, const float* h,
                  float* h_next) {
    for (int64_t r = 0; r < B; ++r) {
      const int64_t row = r * T + t;
      const float* zr = z + r * 3 * U;
      const float* xr = x.projected + row * G;
      const float* hp = h + r * H + u0;
      std::memcpy(x.previous_h + row * H + u0, hp, sizeof(float) * U);
      for (int g = 0; g < 3; ++g)
        std::memcpy(x.saved + (t * B + r) * G + g * H + u0, zr + g * U, sizeof(float) * U);
      float* out = x.outputs + row * H + u0;
      float* hn = h_next + r * H + u0;
      if (!x.mask[row]) {   // a padded step: the carry stays, the output is zero
        std::memset(out, 0, sizeof(float) * U);
        std::memcpy(hn, hp, sizeof(float) * U);
        continue;
      }
      const float *xr_ = xr + u0, *xz = xr + H + u0, *xn = xr + 2 * H + u0;
      const float *hr = zr, *hz = zr + U, *hh = zr + 2 * U;
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        const float rg = sigmoid(xr_[u] + hr[u]), zg = sigmoid(xz[u] + hz[u]);
        const float n = fast_tanh(xn[u] + rg * hh[u]);
        const float hu = (1.0f - zg) * n + zg * hp[u];
        hn[u] = hu;
        out[u] = hu;
      }
    }
  };
  forward_steps(s, 3, x.kernel, x.h0, x.h_T, init, rows);
}

void gru_backward(const LstmShapes& s, const GruBackwardArgs& x) {
  const int64_t T = s.time, B = s.batch, H = s.hidden, G = 3 * H;
  std::memcpy(x.d_h0, x.d_hT, sizeof(float) * B * H);
  reverse_steps(s, 3, x.kernel, x.d_hidden, x.d_h0, [&](int64_t t, int64_t u0, int64_t U) {
    for (int64_t r = 0; r < B; ++r) {
      const int64_t row = r * T + t;
      float* dp = x.d_projected + row * G;
      float* dq = x.d_hidden + row * G;
      float* dh = x.d_h0 + r * H + u0;
      if (!x.mask[row]) {   // a padded step: the carry's gradient passes through
        for (int g = 0; g < 3; ++g) {
          std::memset(dp + g * H + u0, 0, sizeof(float) * U);
          std::memset(dq + g * H + u0, 0, sizeof(float) * U);
        }
        continue;
      }
      const float* xp = x.projected + row * G;
      const float* q = x.saved + (t * B + r) * G;
      const float* hp = x.previous_h + row * H + u0;
      const float* d_out = x.d_outputs + row * H + u0;
      const float *xr_ = xp + u0, *xz = xp + H + u0, *xn = xp + 2 * H + u0;
      const float *qr = q + u0, *qz = q + H + u0, *qn = q + 2 * H + u0;
#pragma omp simd
      for (int64_t u = 0; u < U; ++u) {
        const float rg = sigmoid(xr_[u] + qr[u]), zg = sigmoid(xz[u] + qz[u]);
        const float n = fast_tanh(xn[u] + rg * qn[u]);
        const float dhu = dh[u] + d_out[u];
        const float dan = dhu * (1.0f - zg) * (1.0f - n * n);
        const float dar = dan * qn[u] * rg * (1.0f - rg);
        const float daz = dhu * (hp[u] - n) * zg * (1.0f - zg);
        dp[u0 + u] = dar;
        dp[H + u0 + u] = daz;
        dp[2 * H + u0 + u] = dan;
        dq[u0 + u] = dar;
        dq[H + u0 + u] = daz;
        dq[2 * H + u0 + u] = dan * rg;
        dh[u] = dhu * zg;   // plus the path through W_h, added after the barrier
      }
    }
  });
}

}  // namespace XFERLAB_NS
}  // namespace xferlab_native
