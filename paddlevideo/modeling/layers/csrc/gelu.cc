// Exact (erf) GELU forward and backward on CPU, fp32, element-wise over contiguous tensors:
//   y  = x * Phi(x),                 Phi(x) = (1 + erf(x / sqrt(2))) / 2
//   dx = dy * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
//
// Paddle 3.3's CPU gelu computes a scalar erf per element, which makes it a large share of a ViT-B
// block's MLP time (docs/benchmarks.md). Here erf and exp are written as branch-free
// polynomials so the compiler vectorises the loops (SSE by default, AVX2 / AVX-512 clones picked at
// run time, no -march flag: the build cache may be shared by different CPUs). Both need one exp:
//   erf(|z|) = 1 - t * P(t) * exp(-z^2), t = 1 / (1 + p |z|)   (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7)
// and exp(-z^2) = exp(-x^2 / 2) for z = x / sqrt(2), the same exp that phi needs.
#include <cmath>
#include <cstdint>
#include <vector>

#include "fast_math.h"

namespace {

constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

using pv_cpu::exp_nonpositive;
using pv_cpu::parallel_chunks;

// x limited to [-20, 20]: beyond, exp(-x^2 / 2) < 1e-86 and every GELU term it enters is 0 in float; the
// limit keeps x^2 finite and x * exp(...) from growing with x against exp's lower clamp. NaN stays NaN
// where it matters (normal_cdf takes the unclamped x).
inline float clamp_abs20(float x) { return x < -20.f ? -20.f : (x > 20.f ? 20.f : x); }

// exp(-x^2 / 2), the unnormalised normal density.
inline float gaussian(float x) {
  const float c = clamp_abs20(x);
  return exp_nonpositive(-0.5f * c * c);
}

// Phi(x) given exp(-x^2 / 2).
inline float normal_cdf(float x, float gauss) {
  const float z = std::fabs(x) * kInvSqrt2;
  const float t = 1.f / (1.f + 0.3275911f * z);
  float poly = 1.061405429f;
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  const float erf_abs = 1.f - poly * t * gauss;
  return 0.5f + (x < 0.f ? -0.5f : 0.5f) * erf_abs;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void gelu_forward_range(const float* x, float* y, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i];
    y[i] = v * normal_cdf(v, gaussian(v));
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void gelu_backward_range(const float* x, const float* dy, float* dx, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i];
    const float gauss = gaussian(v);
    dx[i] = dy[i] * (normal_cdf(v, gauss) + clamp_abs20(v) * kInvSqrt2Pi * gauss);
  }
}

}  // namespace

std::vector<paddle::Tensor> GeluForward(const paddle::Tensor& x) {
  pv_cpu::check_cpu_float(x, "gelu", "x");
  auto y = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* xs = x.data<float>();
  float* ys = y.data<float>();
  parallel_chunks(x.numel(), [&](int64_t b, int64_t e) { gelu_forward_range(xs, ys, b, e); });
  return {y};
}

std::vector<paddle::Tensor> GeluBackward(const paddle::Tensor& x, const paddle::Tensor& dy) {
  pv_cpu::check_cpu_float(x, "gelu", "x");
  pv_cpu::check_cpu_float(dy, "gelu", "dy");
  PD_CHECK(x.shape() == dy.shape(), "gelu: x and dy shapes differ");
  auto dx = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* xs = x.data<float>();
  const float* gs = dy.data<float>();
  float* dxs = dx.data<float>();
  parallel_chunks(x.numel(), [&](int64_t b, int64_t e) { gelu_backward_range(xs, gs, dxs, b, e); });
  return {dx};
}

PD_BUILD_OP(pv_gelu).Inputs({"X"}).Outputs({"Y"}).SetKernelFn(PD_KERNEL(GeluForward));

PD_BUILD_OP(pv_gelu_backward).Inputs({"X", "DY"}).Outputs({"DX"}).SetKernelFn(PD_KERNEL(GeluBackward));
