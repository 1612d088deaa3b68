// Scaled softmax over the last axis on CPU, fp32, for attention scores [..., L]:
//   y  = softmax(scale * x)
//   dx = scale * y * (dy - sum(dy * y))          (sums along the row)
//
// Paddle 3.3's CPU softmax is slow on attention scores, and the scale is a separate pass over them
// (docs/benchmarks.md). Here one pass per row reads the scores, with a vectorised exp (fast_math.h);
// the scale is folded in.
#include <cstdint>
#include <vector>

#include "fast_math.h"

namespace {

// Each function takes a range of rows: the threads split the rows (8 or 197 elements each for ViT-B).

__attribute__((target_clones("avx512f", "avx2", "default")))
void softmax_rows(const float* x, float* y, int64_t row_begin, int64_t row_end, int64_t length, float scale) {
  for (int64_t r = row_begin; r < row_end; ++r) pv_cpu::softmax_row(x + r * length, y + r * length, length, scale);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void softmax_backward_rows(const float* y, const float* dy, float* dx, int64_t row_begin, int64_t row_end,
                           int64_t length, float scale) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    pv_cpu::softmax_backward_row(y + r * length, dy + r * length, dx + r * length, length, scale);
  }
}

int64_t last_axis(const paddle::Tensor& t) {
  PD_CHECK(!t.shape().empty() && t.shape().back() > 0, "softmax: the input needs a non-empty last axis");
  return t.shape().back();
}

}  // namespace

std::vector<paddle::Tensor> ScaledSoftmaxForward(const paddle::Tensor& x, float scale) {
  pv_cpu::check_cpu_float(x, "softmax", "x");
  PD_CHECK(scale > 0.f, "softmax: scale must be positive");
  const int64_t length = last_axis(x);
  auto y = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* xs = x.data<float>();
  float* ys = y.data<float>();
  pv_cpu::parallel_chunks(x.numel() / length,
                [&](int64_t b, int64_t e) { softmax_rows(xs, ys, b, e, length, scale); });
  return {y};
}

std::vector<paddle::Tensor> ScaledSoftmaxBackward(const paddle::Tensor& y, const paddle::Tensor& dy,
                                                  float scale) {
  pv_cpu::check_cpu_float(y, "softmax", "y");
  pv_cpu::check_cpu_float(dy, "softmax", "dy");
  PD_CHECK(y.shape() == dy.shape(), "softmax: y and dy shapes differ");
  const int64_t length = last_axis(y);
  auto dx = paddle::empty(y.shape(), y.dtype(), y.place());
  const float* ys = y.data<float>();
  const float* gs = dy.data<float>();
  float* dxs = dx.data<float>();
  pv_cpu::parallel_chunks(y.numel() / length,
                [&](int64_t b, int64_t e) { softmax_backward_rows(ys, gs, dxs, b, e, length, scale); });
  return {dx};
}

PD_BUILD_OP(pv_scaled_softmax).Inputs({"X"}).Outputs({"Y"}).Attrs({"scale: float"}).SetKernelFn(PD_KERNEL(ScaledSoftmaxForward));

PD_BUILD_OP(pv_scaled_softmax_backward).Inputs({"Y", "DY"}).Outputs({"DX"}).Attrs({"scale: float"}).SetKernelFn(PD_KERNEL(ScaledSoftmaxBackward));
