// The LSTM loops compiled for AVX2 + FMA (run only where the CPU has them; lstm_loop.cc).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>
#pragma GCC target("avx2,fma")
#define XFERLAB_NS avx2
#define XFERLAB_VEC 8
#define XFERLAB_ROWS 6
#include "lstm_kernels.h"
