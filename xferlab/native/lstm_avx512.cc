// The LSTM loops compiled for AVX-512 (run only where the CPU has it; lstm_loop.cc).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#define XFERLAB_NS avx512
#define XFERLAB_VEC 16
#define XFERLAB_ROWS 12   // 24 accumulators of the 32 registers
#include "lstm_kernels.h"
