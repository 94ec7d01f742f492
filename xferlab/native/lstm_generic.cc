// The LSTM loops for any x86-64 or other CPU (the compiler's default instruction set).
#define XFERLAB_NS generic
#define XFERLAB_VEC 4
#define XFERLAB_ROWS 4
#include "lstm_kernels.h"
