/* baselines.c: naive C and OpenBLAS versions of each benchmark case.  See
 * baselines.h for the rules they follow. */
#include "baselines.h"

#include <math.h>
#include <string.h>

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif


/* ---- naive C ----------------------------------------------------------- */

/* One query row at a time: its scores into a row buffer, a softmax over
 * the row with libm's expf, then the weighted sum of value rows.  Memory
 * is O(S), like a fused kernel, but nothing is blocked or vectorized by
 * hand. */
void naive_attention(const float *q, const float *k, const float *v, float *o,
                     int H, int T, int S, int D, float scale, int causal,
                     float *scores) {
  for (int h = 0; h < H; h++) {
    const float *qh = q + (size_t)h * T * D;
    const float *kh = k + (size_t)h * S * D;
    const float *vh = v + (size_t)h * S * D;
    float *oh = o + (size_t)h * T * D;
    for (int i = 0; i < T; i++) {
      const float *qi = qh + (size_t)i * D;
      float *oi = oh + (size_t)i * D;
      int n = causal ? (i + 1 < S ? i + 1 : S) : S; /* keys j <= i */
      float m = -INFINITY;
      for (int j = 0; j < n; j++) {
        const float *kj = kh + (size_t)j * D;
        float s = 0.0f;
        for (int d = 0; d < D; d++) s += qi[d] * kj[d];
        scores[j] = s * scale;
        if (scores[j] > m) m = scores[j];
      }
      float sum = 0.0f;
      for (int j = 0; j < n; j++) {
        scores[j] = expf(scores[j] - m);
        sum += scores[j];
      }
      for (int d = 0; d < D; d++) oi[d] = 0.0f;
      for (int j = 0; j < n; j++) {
        const float *vj = vh + (size_t)j * D;
        float p = scores[j];
        for (int d = 0; d < D; d++) oi[d] += p * vj[d];
      }
      float inv = n > 0 ? 1.0f / sum : 0.0f;
      for (int d = 0; d < D; d++) oi[d] *= inv;
    }
  }
}

/* i-k-j order: the innermost loop runs along rows of b and c, so it is
 * contiguous and the compiler vectorizes it.  (The textbook i-j-k order
 * walks b by columns and would be a straw man.) */
void naive_gemm(const float *a, const float *b, float *c, int M, int K, int N) {
  for (int i = 0; i < M; i++) {
    float *ci = c + (size_t)i * N;
    for (int j = 0; j < N; j++) ci[j] = 0.0f;
    for (int kk = 0; kk < K; kk++) {
      float aik = a[(size_t)i * K + kk];
      const float *bk = b + (size_t)kk * N;
      for (int j = 0; j < N; j++) ci[j] += aik * bk[j];
    }
  }
}

/* x @ w^T with w in [out, in] layout: both rows are contiguous, so each
 * output is a dot product of two contiguous rows. */
void naive_linear(const float *x, const float *w, const float *bias, float *y,
                  int T, int in, int out) {
  for (int t = 0; t < T; t++) {
    const float *xt = x + (size_t)t * in;
    for (int j = 0; j < out; j++) {
      const float *wj = w + (size_t)j * in;
      float s = 0.0f;
      for (int kk = 0; kk < in; kk++) s += xt[kk] * wj[kk];
      y[(size_t)t * out + j] = s + bias[j];
    }
  }
}

/* ---- OpenBLAS ---------------------------------------------------------- */
#ifdef HAVE_OPENBLAS

/* Row-wise softmax of p [T, S] in place; with causal, row i keeps keys
 * 0..i and the rest become 0 (the sgemms still run over the full matrix, as
 * a framework's unfused attention does). */
static void softmax_rows(float *p, int T, int S, int causal) {
  for (int i = 0; i < T; i++) {
    float *r = p + (size_t)i * S;
    int n = causal ? (i + 1 < S ? i + 1 : S) : S;
    float m = -INFINITY;
    for (int j = 0; j < n; j++) m = r[j] > m ? r[j] : m;
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
      r[j] = expf(r[j] - m);
      sum += r[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < n; j++) r[j] *= inv;
    for (int j = n; j < S; j++) r[j] = 0.0f;
  }
}

void blas_attention(const float *q, const float *k, const float *v, float *o,
                    int H, int T, int S, int D, float scale, int causal,
                    float *p) {
  for (int h = 0; h < H; h++) {
    const float *qh = q + (size_t)h * T * D;
    const float *kh = k + (size_t)h * S * D;
    const float *vh = v + (size_t)h * S * D;
    float *oh = o + (size_t)h * T * D;
    /* p = scale * q k^T   [T, S] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, D, scale, qh, D,
                kh, D, 0.0f, p, S);
    softmax_rows(p, T, S, causal);
    /* o = p v   [T, D] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, S, 1.0f, p, S,
                vh, D, 0.0f, oh, D);
  }
}

void blas_gemm(const float *a, const float *b, float *c, int M, int K, int N) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K,
              b, N, 0.0f, c, N);
}

/* Copy the bias into every row of y, then accumulate the product on top of
 * it (beta = 1): the usual way to get a bias out of sgemm for free. */
static void fill_rows(float *y, const float *bias, int rows, int cols) {
  for (int t = 0; t < rows; t++) memcpy(y + (size_t)t * cols, bias, sizeof(float) * cols);
}

void blas_linear(const float *x, const float *w, const float *bias, float *y,
                 int T, int in, int out) {
  fill_rows(y, bias, T, out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, in,
              w, in, 1.0f, y, out);
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The exact GELU, as PyTorch's nn.GELU() and attnc's gelu. */
static float geluf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

void blas_mlp(const float *x, const float *w1, const float *b1,
              const float *w2, const float *b2, float *y, int T, int D, int F,
              float *h) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, F, D, 1.0f, x, D, w1,
              D, 0.0f, h, F);
  for (int t = 0; t < T; t++) {
    float *ht = h + (size_t)t * F;
    for (int j = 0; j < F; j++) ht[j] = geluf(ht[j] + b1[j]);
  }
  fill_rows(y, b2, T, D);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, D, F, 1.0f, h, F, w2,
              F, 1.0f, y, D);
}

/* gates += h_prev @ whh^T for the B rows of one step.  Row b of h_prev is
 * at h_prev + b*ldh, row b of gates at gates + b*ldg.  One sequence is a
 * matrix-vector product (sgemv); a batch is a small sgemm. */
static void recur(const float *h_prev, int ldh, const float *whh, float *gates,
                  int ldg, int B, int G, int H) {
  if (B == 1)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, G, H, 1.0f, whh, H, h_prev, 1,
                1.0f, gates, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, G, H, 1.0f, h_prev,
                ldh, whh, H, 1.0f, gates, ldg);
}

/* The input projection of every step at once (one sgemm over B*T rows,
 * both biases folded in), then per step the recurrent product accumulated
 * into that step's rows and the gate loop.  Hidden states go straight into
 * out [B, T, H]; the next step reads them from there (stride T*H). */
void blas_lstm(const float *x, const float *wih, const float *whh,
               const float *bih, const float *bhh, float *out, int B, int T,
               int NI, int H, float *xp, float *c) {
  int G = 4 * H;
  for (int r = 0; r < B * T; r++) {
    float *row = xp + (size_t)r * G;
    for (int j = 0; j < G; j++) row[j] = bih[j] + bhh[j];
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B * T, G, NI, 1.0f, x, NI,
              wih, NI, 1.0f, xp, G);
  memset(c, 0, sizeof(float) * B * H);
  for (int t = 0; t < T; t++) {
    if (t > 0) /* h_0 = 0: the first step has no recurrent term */
      recur(out + (size_t)(t - 1) * H, T * H, whh, xp + (size_t)t * G, T * G, B, G, H);
    for (int b = 0; b < B; b++) {
      const float *g = xp + ((size_t)b * T + t) * G;
      float *cb = c + (size_t)b * H;
      float *hb = out + ((size_t)b * T + t) * H;
      for (int j = 0; j < H; j++) {
        float ig = sigmoidf(g[j]), fg = sigmoidf(g[H + j]);
        float gg = tanhf(g[2 * H + j]), og = sigmoidf(g[3 * H + j]);
        cb[j] = fg * cb[j] + ig * gg;
        hb[j] = og * tanhf(cb[j]);
      }
    }
  }
}

/* GRU: the recurrent part of n is multiplied by r before it is added, so
 * the recurrent product (with b_hh) goes into its own buffer hp each step. */
void blas_gru(const float *x, const float *wih, const float *whh,
              const float *bih, const float *bhh, float *out, int B, int T,
              int NI, int H, float *xp, float *hp) {
  int G = 3 * H;
  fill_rows(xp, bih, B * T, G);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B * T, G, NI, 1.0f, x, NI,
              wih, NI, 1.0f, xp, G);
  for (int t = 0; t < T; t++) {
    fill_rows(hp, bhh, B, G);
    if (t > 0) recur(out + (size_t)(t - 1) * H, T * H, whh, hp, G, B, G, H);
    for (int b = 0; b < B; b++) {
      const float *g = xp + ((size_t)b * T + t) * G;
      const float *r = hp + (size_t)b * G;
      float *hb = out + ((size_t)b * T + t) * H;
      const float *hprev = t > 0 ? hb - H : NULL;
      for (int j = 0; j < H; j++) {
        float rg = sigmoidf(g[j] + r[j]);
        float zg = sigmoidf(g[H + j] + r[H + j]);
        float ng = tanhf(g[2 * H + j] + rg * r[2 * H + j]);
        float hp0 = hprev ? hprev[j] : 0.0f;
        hb[j] = (1.0f - zg) * ng + zg * hp0;
      }
    }
  }
}

#endif
