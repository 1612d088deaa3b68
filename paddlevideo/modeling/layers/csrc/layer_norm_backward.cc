// CPU backward of LayerNorm over the last axis, for fp32 rows: y = (x - mean) * rstd * w + b.
//
// Paddle 3.3's CPU layer_norm_grad kernel takes many times the time of its forward (docs/benchmarks.md);
// this one reads x and dy once per row for the statistics and once for the outputs, and accumulates the
// weight/bias gradients in per-thread rows (no column reduction pass). Built when a model is built, by paddlevideo/modeling/layers/cpu_kernels.py.
#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "paddle/extension.h"

// Returns {dx [same shape as x], dweight [D], dbias [D]}.
std::vector<paddle::Tensor> LayerNormBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                              const paddle::Tensor& dy, float epsilon) {
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, "layer_norm_backward: x must be float32");
  PD_CHECK(x.shape() == dy.shape(), "layer_norm_backward: x and dy shapes differ");
  const int64_t dim = x.shape().back();
  PD_CHECK(weight.numel() == dim, "layer_norm_backward: weight must have the last-axis size");
  const int64_t rows = x.numel() / dim;
  auto dx = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* xs = x.data<float>();
  const float* ws = weight.data<float>();
  const float* gs = dy.data<float>();
  float* dxs = dx.data<float>();

  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::vector<float> dw_rows(static_cast<size_t>(threads) * dim, 0.f);
  std::vector<float> db_rows(static_cast<size_t>(threads) * dim, 0.f);
  const float inv_dim = 1.f / static_cast<float>(dim);

#pragma omp parallel num_threads(threads)
  {
    int thread = 0;
#ifdef _OPENMP
    thread = omp_get_thread_num();
#endif
    float* dw = dw_rows.data() + static_cast<size_t>(thread) * dim;
    float* db = db_rows.data() + static_cast<size_t>(thread) * dim;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = xs + r * dim;
      const float* gr = gs + r * dim;
      float* dxr = dxs + r * dim;
      float sum = 0.f;
      for (int64_t j = 0; j < dim; ++j) sum += xr[j];
      const float mean = sum * inv_dim;
      float squares = 0.f;
      for (int64_t j = 0; j < dim; ++j) {
        const float c = xr[j] - mean;
        squares += c * c;
      }
      const float rstd = 1.f / std::sqrt(squares * inv_dim + epsilon);
      // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w
      float g_sum = 0.f, gx_sum = 0.f;
      for (int64_t j = 0; j < dim; ++j) {
        const float xhat = (xr[j] - mean) * rstd;
        const float g = gr[j] * ws[j];
        g_sum += g;
        gx_sum += g * xhat;
        dw[j] += gr[j] * xhat;
        db[j] += gr[j];
      }
      const float g_mean = g_sum * inv_dim, gx_mean = gx_sum * inv_dim;
      for (int64_t j = 0; j < dim; ++j) {
        const float xhat = (xr[j] - mean) * rstd;
        dxr[j] = rstd * (gr[j] * ws[j] - g_mean - xhat * gx_mean);
      }
    }
  }

  auto dweight = paddle::empty({dim}, x.dtype(), x.place());
  auto dbias = paddle::empty({dim}, x.dtype(), x.place());
  float* dws = dweight.data<float>();
  float* dbs = dbias.data<float>();
  for (int64_t j = 0; j < dim; ++j) {
    float w_total = 0.f, b_total = 0.f;
    for (int t = 0; t < threads; ++t) {
      w_total += dw_rows[static_cast<size_t>(t) * dim + j];
      b_total += db_rows[static_cast<size_t>(t) * dim + j];
    }
    dws[j] = w_total;
    dbs[j] = b_total;
  }
  return {dx, dweight, dbias};
}

PD_BUILD_OP(pv_layer_norm_backward).Inputs({"X", "Weight", "DY"}).Outputs({"DX", "DWeight", "DBias"}).Attrs({"epsilon: float"}).SetKernelFn(PD_KERNEL(LayerNormBackward));
