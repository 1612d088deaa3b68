// Shared pieces of the fused CPU kernels (gelu.cc, softmax.cc, attention.cc): a vectorisable exp for
// non-positive arguments, a static split of a range over the OpenMP threads, a softmax row forward and
// backward, and input checks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "paddle/extension.h"

namespace pv_cpu {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 split in two so that n * kLn2Hi is exact
constexpr float kLn2Lo = 1.428606765330187e-06f;

// exp(v) for v <= 0, written without branches or calls so that loops over it vectorise. Below -80 it
// returns exp(-80) ~ 2e-35 (the callers multiply or add it to nothing next to float rounding), and the
// clamp keeps every product out of the slow denormal range.
inline float exp_nonpositive(float v) {
  v = v < -80.f ? -80.f : v;
  // Round to nearest by adding and removing 1.5 * 2^23 (exact for |n| < 2^22; vectorises on SSE2).
  const float n = (v * kLog2e + 12582912.f) - 12582912.f;
  const float r = (v - n * kLn2Hi) - n * kLn2Lo;  // |r| <= ln(2) / 2
  // Taylor series to r^7: relative error < 5e-9 on |r| <= 0.35, below float rounding.
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-116, 0]
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// Runs body(begin, end) over [0, n) in one contiguous chunk per OpenMP thread (cache-line aligned cuts).
template <typename Body>
void parallel_chunks(int64_t n, Body body) {
#pragma omp parallel
  {
    int threads = 1, thread = 0;
#ifdef _OPENMP
    threads = omp_get_num_threads();
    thread = omp_get_thread_num();
#endif
    const int64_t chunk = ((n + threads - 1) / threads + 15) / 16 * 16;
    const int64_t begin = std::min<int64_t>(n, chunk * thread);
    body(begin, std::min<int64_t>(n, begin + chunk));
  }
}

// y = softmax(scale * x) over one row of n (scale > 0; y may be x). Inlined into each caller's AVX2 /
// AVX-512 clone. A row with an inf or nan gives nan (inf - inf), as softmax does.
inline void softmax_row(const float* x, float* y, int64_t n, float scale) {
  float top = x[0];
#pragma omp simd reduction(max : top)
  for (int64_t j = 0; j < n; ++j) top = x[j] > top ? x[j] : top;
  const float shift = scale * top;  // the largest scaled score: every exponent is <= 0
  float total = 0.f;
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < n; ++j) {
    const float e = exp_nonpositive(scale * x[j] - shift);
    y[j] = e;
    total += e;
  }
  const float inverse = 1.f / total;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] *= inverse;
}

// dx = scale * y * (dy - sum(dy * y)) over one row of n: the gradient of softmax(scale * x) (dx may be dy).
inline void softmax_backward_row(const float* y, const float* dy, float* dx, int64_t n, float scale) {
  float dot = 0.f;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < n; ++j) dot += dy[j] * y[j];
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dx[j] = scale * y[j] * (dy[j] - dot);
}

// Fails with "<op>: <what> must be float32" / "... on the CPU".
inline void check_cpu_float(const paddle::Tensor& t, const char* op, const char* what) {
  PD_CHECK(t.dtype() == paddle::DataType::FLOAT32, op, ": ", what, " must be float32");
  PD_CHECK(t.is_cpu(), op, ": ", what, " must be on the CPU");
}

}  // namespace pv_cpu
