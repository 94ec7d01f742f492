// Shared declarations of the native LSTM and GRU loops (lstm_loop.cc, lstm_kernels.h).
#pragma once
#include <cstdint>

namespace xferlab_native {

struct LstmShapes {
  int64_t time, batch, hidden;
  int threads;
};

// Batch-major where XLA reads or writes the array (the layer's own layout: no transposes
// around the call); time-major where only the loops do (previous_c, saved: each step's
// rows contiguous). G = 4H, gates i, f, g, o; saved = projected + bias + h_{t-1} W_h.
struct LstmForwardArgs {
  const float* projected;   // [B, T, G]
  const bool* mask;         // [B, T]
  const float* kernel;      // [H, G]
  const float* bias;        // [G]
  const float *c0, *h0;     // [B, H]
  float* outputs;           // [B, T, H]
  float *c_T, *h_T;         // [B, H]
  float* previous_c;        // [T, B, H]
  float* previous_h;        // [B, T, H]
  float* saved;             // [T, B, G]
};

struct LstmBackwardArgs {
  const float* kernel;      // [H, G]
  const bool* mask;         // [B, T]
  const float* previous_c;  // [T, B, H]
  const float* saved;       // [T, B, G]
  const float* d_outputs;   // [B, T, H]
  const float *d_cT, *d_hT; // [B, H]
  float* d_saved;           // [B, T, G]
  float *d_c0, *d_h0;       // [B, H]
};

// The GRU (gates r, z, n; G = 3H): hidden = h_{t-1} W_h + b_h is saved, since the reset
// gate scales its n part only (n = tanh(x_n + r * hidden_n)); the backward pass returns the
// gradients of the projected inputs and of hidden separately.
struct GruForwardArgs {
  const float* projected;   // [B, T, G]  (W_x x_t + b_x)
  const bool* mask;         // [B, T]
  const float* kernel;      // [H, G]
  const float* bias;        // [G]  (b_h)
  const float* h0;          // [B, H]
  float* outputs;           // [B, T, H]
  float* h_T;               // [B, H]
  float* previous_h;        // [B, T, H]
  float* saved;             // [T, B, G]  hidden
};

struct GruBackwardArgs {
  const float* kernel;      // [H, G]
  const bool* mask;         // [B, T]
  const float* projected;   // [B, T, G]
  const float* previous_h;  // [B, T, H]
  const float* saved;       // [T, B, G]
  const float* d_outputs;   // [B, T, H]
  const float* d_hT;        // [B, H]
  float* d_projected;       // [B, T, G]
  float* d_hidden;          // [B, T, G]
  float* d_h0;              // [B, H]
};

#define XFERLAB_DECLARE(ns)                                           \
  namespace ns {                                                      \
  void forward(const LstmShapes& s, const LstmForwardArgs& x);        \
  void backward(const LstmShapes& s, const LstmBackwardArgs& x);      \
  void gru_forward(const LstmShapes& s, const GruForwardArgs& x);     \
  void gru_backward(const LstmShapes& s, const GruBackwardArgs& x);   \
  }
XFERLAB_DECLARE(avx512)
XFERLAB_DECLARE(avx2)
XFERLAB_DECLARE(generic)
#undef XFERLAB_DECLARE

}  // namespace xferlab_native
