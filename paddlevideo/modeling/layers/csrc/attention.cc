// Multi-head attention on CPU, fp32, straight from the packed qkv projection (no split, no transposes):
//   qkv [B, L, 3 * H * d] (q, k, v blocks along the last axis, heads contiguous inside each block)
//   out [B, L, H * d],  out[b, :, h] = softmax(scale * q_bh k_bh^T) v_bh
// and its backward, d qkv from d out and the saved attention probabilities [B, H, L, L].
//
// Paddle's composite path copies q, k and v out of qkv (split), transposes each to [B, H, L, d], scales,
// runs the batched products and a separate softmax, and transposes the output back: 6 full copies of
// the activations per attention, and as many again in the backward. Here each (b, h) pair reads its q, k,
// v columns in place through the GEMMs' leading dimensions (MKL's cblas_sgemm, the BLAS Paddle ships),
// keeps its L x L scores in cache through the softmax, and writes its output columns in place. The pairs
// are split over the OpenMP threads (one GEMM thread each). Compiled only when Paddle ships MKL
// (PV_WITH_CBLAS, set by cpu_kernels.py); the model falls back to the composite path otherwise.
#ifdef PV_WITH_CBLAS

#include <cstdint>
#include <vector>

#include "fast_math.h"

extern "C" {
// The CBLAS interface (row-major = 101, no transpose = 111, transpose = 112), from Paddle's libmklml.
void cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc);
}

namespace {

constexpr int kRowMajor = 101;
constexpr int kNoTrans = 111;
constexpr int kTrans = 112;

// C[m, n] = alpha * op(A) op(B), row-major with leading dimensions. (Plain vectorised loops were slower than
// MKL even for the small products of the temporal attention; docs/benchmarks.md.)
inline void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  cblas_sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
              0.f, c, static_cast<int>(ldc));
}

struct Layout {
  int64_t batch, length, heads, head_dim, dim;  // dim = heads * head_dim
  // Element offset of (b, row 0, block, head h) in qkv [B, L, 3 * dim]; rows are 3 * dim apart.
  int64_t qkv_offset(int64_t b, int64_t block, int64_t h) const {
    return b * length * 3 * dim + block * dim + h * head_dim;
  }
  // Element offset of (b, row 0, head h) in out [B, L, dim].
  int64_t out_offset(int64_t b, int64_t h) const { return b * length * dim + h * head_dim; }
};

Layout layout_of(const paddle::Tensor& qkv, int64_t heads) {
  PD_CHECK(qkv.shape().size() == 3, "attention: qkv must be [B, L, 3 * dim]");
  const int64_t packed = qkv.shape()[2];
  PD_CHECK(heads > 0 && packed % (3 * heads) == 0, "attention: qkv's last axis must be 3 * heads * head_dim");
  return {qkv.shape()[0], qkv.shape()[1], heads, packed / (3 * heads), packed / 3};
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void softmax_rows_in_place(float* scores, int64_t length) {
  for (int64_t r = 0; r < length; ++r) pv_cpu::softmax_row(scores + r * length, scores + r * length, length, 1.f);
}

// dP <- P * (dP - rowsum(dP * P)): the softmax backward, in place (the scale goes into the next GEMMs).
__attribute__((target_clones("avx512f", "avx2", "default")))
void softmax_backward_rows_in_place(const float* probs, float* grad, int64_t length) {
  for (int64_t r = 0; r < length; ++r) {
    pv_cpu::softmax_backward_row(probs + r * length, grad + r * length, grad + r * length, length, 1.f);
  }
}

}  // namespace

// Returns {out [B, L, dim], probs [B, H, L, L] (with save_probs; else a 1-element placeholder)}.
std::vector<paddle::Tensor> AttentionForward(const paddle::Tensor& qkv, int64_t heads, float scale,
                                             bool save_probs) {
  pv_cpu::check_cpu_float(qkv, "attention", "qkv");
  const Layout s = layout_of(qkv, heads);
  const int64_t square = s.length * s.length;
  auto out = paddle::empty({s.batch, s.length, s.dim}, qkv.dtype(), qkv.place());
  auto probs = save_probs ? paddle::empty({s.batch, heads, s.length, s.length}, qkv.dtype(), qkv.place())
                          : paddle::empty({1}, qkv.dtype(), qkv.place());
  const float* in = qkv.data<float>();
  float* o = out.data<float>();
  float* saved = probs.data<float>();
  const int64_t pairs = s.batch * heads;
#pragma omp parallel
  {
    std::vector<float> scratch(save_probs ? 0 : square);
#pragma omp for schedule(static)
    for (int64_t pair = 0; pair < pairs; ++pair) {
      const int64_t b = pair / heads, h = pair % heads;
      float* scores = save_probs ? saved + pair * square : scratch.data();
      const float* q = in + s.qkv_offset(b, 0, h);
      const float* k = in + s.qkv_offset(b, 1, h);
      const float* v = in + s.qkv_offset(b, 2, h);
      gemm(false, true, s.length, s.length, s.head_dim, scale, q, 3 * s.dim, k, 3 * s.dim, scores, s.length);
      softmax_rows_in_place(scores, s.length);
      gemm(false, false, s.length, s.head_dim, s.length, 1.f, scores, s.length, v, 3 * s.dim,
           o + s.out_offset(b, h), s.dim);
    }
  }
  return {out, probs};
}

// Returns {d qkv [B, L, 3 * dim]}.
std::vector<paddle::Tensor> AttentionBackward(const paddle::Tensor& qkv, const paddle::Tensor& probs,
                                              const paddle::Tensor& dout, int64_t heads, float scale) {
  pv_cpu::check_cpu_float(qkv, "attention", "qkv");
  pv_cpu::check_cpu_float(probs, "attention", "probs");
  pv_cpu::check_cpu_float(dout, "attention", "dout");
  const Layout s = layout_of(qkv, heads);
  PD_CHECK(probs.numel() == s.batch * heads * s.length * s.length, "attention: probs do not match qkv");
  PD_CHECK(dout.numel() == s.batch * s.length * s.dim, "attention: dout does not match qkv");
  const int64_t square = s.length * s.length;
  auto dqkv = paddle::empty(qkv.shape(), qkv.dtype(), qkv.place());
  const float* in = qkv.data<float>();
  const float* p_all = probs.data<float>();
  const float* g_all = dout.data<float>();
  float* d = dqkv.data<float>();
  const int64_t pairs = s.batch * heads;
#pragma omp parallel
  {
    std::vector<float> grad_scores(square);
#pragma omp for schedule(static)
    for (int64_t pair = 0; pair < pairs; ++pair) {
      const int64_t b = pair / heads, h = pair % heads;
      const float* p = p_all + pair * square;
      const float* g = g_all + s.out_offset(b, h);
      const int64_t ld = 3 * s.dim;
      // dP = dO v^T; dv = P^T dO; dS = softmax backward of dP; dq = scale dS k; dk = scale dS^T q.
      gemm(false, true, s.length, s.length, s.head_dim, 1.f, g, s.dim, in + s.qkv_offset(b, 2, h), ld,
           grad_scores.data(), s.length);
      gemm(true, false, s.length, s.head_dim, s.length, 1.f, p, s.length, g, s.dim, d + s.qkv_offset(b, 2, h), ld);
      softmax_backward_rows_in_place(p, grad_scores.data(), s.length);
      gemm(false, false, s.length, s.head_dim, s.length, scale, grad_scores.data(), s.length,
           in + s.qkv_offset(b, 1, h), ld, d + s.qkv_offset(b, 0, h), ld);
      gemm(true, false, s.length, s.head_dim, s.length, scale, grad_scores.data(), s.length,
           in + s.qkv_offset(b, 0, h), ld, d + s.qkv_offset(b, 1, h), ld);
    }
  }
  return {dqkv};
}

PD_BUILD_OP(pv_attention).Inputs({"QKV"}).Outputs({"Out", "Probs"}).Attrs({"heads: int64_t", "scale: float", "save_probs: bool"}).SetKernelFn(PD_KERNEL(AttentionForward));

PD_BUILD_OP(pv_attention_backward).Inputs({"QKV", "Probs", "DOut"}).Outputs({"DQKV"}).Attrs({"heads: int64_t", "scale: float"}).SetKernelFn(PD_KERNEL(AttentionBackward));

#endif  // PV_WITH_CBLAS
