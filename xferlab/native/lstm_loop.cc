// The LSTM and GRU time loops of xferlab/models/scan.py as XLA FFI custom calls (CPU).
//
// The same computation as ``scan._forward`` / ``scan._scan_bwd`` for the LSTM (an
// "additive" cell), with the same masking: a padded step keeps the carry and outputs
// zeros. Only how it runs differs (lstm_kernels.h): threads split the hidden units, each
// packs its columns of W_h once per call and runs every time step with a register-
// blocked matmul and vectorized gate arithmetic, one barrier per step, instead of one XLA
// while-loop iteration of several instructions per step. The code for AVX-512, AVX2 or
// neither is chosen here at run time from the CPU's features.
//
// Batch-major where XLA reads or writes the array (the layer's layout: no transposes
// around the calls), time-major where only the loops do (previous_c, saved):
//   forward  (projected f32[B,T,4H], mask pred[B,T], kernel f32[H,4H], bias f32[4H],
//             c0 f32[B,H], h0 f32[B,H])
//         -> (outputs f32[B,T,H], cT f32[B,H], hT f32[B,H], previous_c f32[T,B,H],
//             previous_h f32[B,T,H], saved f32[T,B,4H])
//   backward (kernel, mask, previous_c, saved, d_outputs, dcT, dhT)
//         -> (d_saved f32[B,T,4H], dc0 f32[B,H], dh0 f32[B,H])
// The GRU (lstm_loop.h's GruForwardArgs / GruBackwardArgs):
//   gru_forward  (projected f32[B,T,3H], mask, kernel f32[H,3H], bias f32[3H], h0 f32[B,H])
//         -> (outputs f32[B,T,H], hT f32[B,H], previous_h f32[B,T,H], saved f32[T,B,3H])
//   gru_backward (kernel, mask, projected, previous_h, saved, d_outputs, dhT)
//         -> (d_projected f32[B,T,3H], d_hidden f32[B,T,3H], dh0 f32[B,H])
#include <sched.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "lstm_loop.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using namespace xferlab_native;

namespace {

int g_threads = 0;   // 0: the cores this process may run on

int threads() {
  if (g_threads > 0) return g_threads;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::thread::hardware_concurrency());
}

struct Kernels {
  void (*forward)(const LstmShapes&, const LstmForwardArgs&);
  void (*backward)(const LstmShapes&, const LstmBackwardArgs&);
  void (*gru_forward)(const LstmShapes&, const GruForwardArgs&);
  void (*gru_backward)(const LstmShapes&, const GruBackwardArgs&);
  const char* name;
};

#define XFERLAB_KERNELS(ns) \
  Kernels { ns::forward, ns::backward, ns::gru_forward, ns::gru_backward, #ns }

const Kernels& kernels() {
  static const Kernels chosen = [] {
    __builtin_cpu_init();
    // XFERLAB_NATIVE_ISA=avx2|generic forces a narrower variant (tests run each one).
    const char* forced = std::getenv("XFERLAB_NATIVE_ISA");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (forced && std::strcmp(forced, "generic") == 0) return XFERLAB_KERNELS(generic);
    if (forced && std::strcmp(forced, "avx2") == 0 && avx2) return XFERLAB_KERNELS(avx2);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
      return XFERLAB_KERNELS(avx512);
    if (avx2) return XFERLAB_KERNELS(avx2);
    return XFERLAB_KERNELS(generic);
  }();
  return chosen;
}

ffi::Error Forward(ffi::Buffer<ffi::F32> projected, ffi::Buffer<ffi::PRED> mask,
                   ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> bias,
                   ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> h0,
                   ffi::ResultBuffer<ffi::F32> outputs, ffi::ResultBuffer<ffi::F32> c_T,
                   ffi::ResultBuffer<ffi::F32> h_T, ffi::ResultBuffer<ffi::F32> previous_c,
                   ffi::ResultBuffer<ffi::F32> previous_h, ffi::ResultBuffer<ffi::F32> saved) {
  auto dims = projected.dimensions();
  if (dims.size() != 3 || dims[2] % 4 != 0)
    return ffi::Error::InvalidArgument("projected must be [batch, time, 4 * hidden]");
  LstmShapes shapes{dims[1], dims[0], dims[2] / 4, threads()};
  LstmForwardArgs args{projected.typed_data(), mask.typed_data(), kernel.typed_data(),
                       bias.typed_data(), c0.typed_data(), h0.typed_data(),
                       outputs->typed_data(), c_T->typed_data(), h_T->typed_data(),
                       previous_c->typed_data(), previous_h->typed_data(), saved->typed_data()};
  kernels().forward(shapes, args);
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::PRED> mask,
                    ffi::Buffer<ffi::F32> previous_c, ffi::Buffer<ffi::F32> saved,
                    ffi::Buffer<ffi::F32> d_outputs, ffi::Buffer<ffi::F32> d_cT,
                    ffi::Buffer<ffi::F32> d_hT, ffi::ResultBuffer<ffi::F32> d_saved,
                    ffi::ResultBuffer<ffi::F32> d_c0, ffi::ResultBuffer<ffi::F32> d_h0) {
  auto dims = saved.dimensions();
  if (dims.size() != 3 || dims[2] % 4 != 0)
    return ffi::Error::InvalidArgument("saved must be [time, batch, 4 * hidden]");
  LstmShapes shapes{dims[0], dims[1], dims[2] / 4, threads()};
  LstmBackwardArgs args{kernel.typed_data(), mask.typed_data(), previous_c.typed_data(),
                        saved.typed_data(), d_outputs.typed_data(), d_cT.typed_data(),
                        d_hT.typed_data(), d_saved->typed_data(), d_c0->typed_data(),
                        d_h0->typed_data()};
  kernels().backward(shapes, args);
  return ffi::Error::Success();
}

ffi::Error GruForward(ffi::Buffer<ffi::F32> projected, ffi::Buffer<ffi::PRED> mask,
                      ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> bias,
                      ffi::Buffer<ffi::F32> h0, ffi::ResultBuffer<ffi::F32> outputs,
                      ffi::ResultBuffer<ffi::F32> h_T, ffi::ResultBuffer<ffi::F32> previous_h,
                      ffi::ResultBuffer<ffi::F32> saved) {
  auto dims = projected.dimensions();
  if (dims.size() != 3 || dims[2] % 3 != 0)
    return ffi::Error::InvalidArgument("projected must be [batch, time, 3 * hidden]");
  LstmShapes shapes{dims[1], dims[0], dims[2] / 3, threads()};
  GruForwardArgs args{projected.typed_data(), mask.typed_data(), kernel.typed_data(),
                      bias.typed_data(), h0.typed_data(), outputs->typed_data(),
                      h_T->typed_data(), previous_h->typed_data(), saved->typed_data()};
  kernels().gru_forward(shapes, args);
  return ffi::Error::Success();
}

ffi::Error GruBackward(ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::PRED> mask,
                       ffi::Buffer<ffi::F32> projected, ffi::Buffer<ffi::F32> previous_h,
                       ffi::Buffer<ffi::F32> saved, ffi::Buffer<ffi::F32> d_outputs,
                       ffi::Buffer<ffi::F32> d_hT, ffi::ResultBuffer<ffi::F32> d_projected,
                       ffi::ResultBuffer<ffi::F32> d_hidden, ffi::ResultBuffer<ffi::F32> d_h0) {
  auto dims = saved.dimensions();
  if (dims.size() != 3 || dims[2] % 3 != 0)
    return ffi::Error::InvalidArgument("saved must be [time, batch, 3 * hidden]");
  LstmShapes shapes{dims[0], dims[1], dims[2] / 3, threads()};
  GruBackwardArgs args{kernel.typed_data(), mask.typed_data(), projected.typed_data(),
                       previous_h.typed_data(), saved.typed_data(), d_outputs.typed_data(),
                       d_hT.typed_data(), d_projected->typed_data(), d_hidden->typed_data(),
                       d_h0->typed_data()};
  kernels().gru_backward(shapes, args);
  return ffi::Error::Success();
}

}  // namespace

// The handlers' signatures, in the order of their parameters above.
#define F32_ARG .Arg<ffi::Buffer<ffi::F32>>()
#define PRED_ARG .Arg<ffi::Buffer<ffi::PRED>>()
#define F32_RET .Ret<ffi::Buffer<ffi::F32>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(XferlabGruForward, GruForward,
    ffi::Ffi::Bind() F32_ARG PRED_ARG F32_ARG F32_ARG F32_ARG
        F32_RET F32_RET F32_RET F32_RET);
XLA_FFI_DEFINE_HANDLER_SYMBOL(XferlabGruBackward, GruBackward,
    ffi::Ffi::Bind() F32_ARG PRED_ARG F32_ARG F32_ARG F32_ARG F32_ARG F32_ARG
        F32_RET F32_RET F32_RET);
XLA_FFI_DEFINE_HANDLER_SYMBOL(XferlabLstmForward, Forward,
    ffi::Ffi::Bind() F32_ARG PRED_ARG F32_ARG F32_ARG F32_ARG F32_ARG
        F32_RET F32_RET F32_RET F32_RET F32_RET F32_RET);
XLA_FFI_DEFINE_HANDLER_SYMBOL(XferlabLstmBackward, Backward,
    ffi::Ffi::Bind() F32_ARG PRED_ARG F32_ARG F32_ARG F32_ARG F32_ARG F32_ARG
        F32_RET F32_RET F32_RET);

#undef F32_ARG
#undef PRED_ARG
#undef F32_RET

// Threads per call (0: the cores this process may run on).
extern "C" void xferlab_set_threads(int n) { g_threads = n; }

// The instruction set the loops run with here: "avx512", "avx2" or "generic".
extern "C" const char* xferlab_instruction_set() { return kernels().name; }
