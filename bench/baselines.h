/* baselines.h: what attnc's generated code is measured against, written
 * the way a C programmer without attnc would write it.
 *
 * naive_*  plain loops, compiled with the same -O3 -march=native as the
 *          rest of bench/ (no -ffast-math: attnc promises IEEE results, so
 *          the baselines keep them too).  Loop orders are the ordinary
 *          cache-friendly ones, not straw men.
 * blas_*   the same computations on OpenBLAS's cblas_sgemm / cblas_sgemv,
 *          unfused: the score matrix of attention is built in full, the
 *          bias and activation are a separate pass.  Only with OpenBLAS
 *          (HAVE_OPENBLAS).
 *
 * All tensors are dense row-major float arrays, laid out as the .attn
 * models in bench/models/ declare them; weights are in PyTorch's layouts
 * ([out, in] for Linear, gates stacked i,f,g,o / r,z,n for LSTM / GRU). */
#ifndef BASELINES_H
#define BASELINES_H

/* o[h] = softmax(q[h] k[h]^T * scale [causal]) v[h] for each of H heads;
 * q: [H, T, D], k, v: [H, S, D], o: [H, T, D].  Causal hides key j from
 * query i when j > i.  scores: scratch of S floats. */
void naive_attention(const float *q, const float *k, const float *v, float *o,
                     int H, int T, int S, int D, float scale, int causal,
                     float *scores);

/* c[M, N] = a[M, K] @ b[K, N] */
void naive_gemm(const float *a, const float *b, float *c, int M, int K, int N);

/* y[T, out] = x[T, in] @ w[out, in]^T + bias[out] */
void naive_linear(const float *x, const float *w, const float *bias, float *y,
                  int T, int in, int out);

#ifdef HAVE_OPENBLAS
/* As naive_attention, with the [T, S] score matrix of each head built by
 * one sgemm in p (T*S floats), a softmax pass over it, and a second sgemm. */
void blas_attention(const float *q, const float *k, const float *v, float *o,
                    int H, int T, int S, int D, float scale, int causal,
                    float *p);

void blas_gemm(const float *a, const float *b, float *c, int M, int K, int N);

void blas_linear(const float *x, const float *w, const float *bias, float *y,
                 int T, int in, int out);

/* y = fc2(gelu(fc1(x))): x [T, D], w1 [F, D], b1 [F], w2 [D, F], b2 [D];
 * h: scratch of T*F floats. */
void blas_mlp(const float *x, const float *w1, const float *b1,
              const float *w2, const float *b2, float *y, int T, int D, int F,
              float *h);

/* One LSTM layer, batch_first: x [B, T, NI] -> out [B, T, H], from a zero
 * state.  xp: scratch of B*T*4H floats, c: B*H floats. */
void blas_lstm(const float *x, const float *wih, const float *whh,
               const float *bih, const float *bhh, float *out, int B, int T,
               int NI, int H, float *xp, float *c);

/* One GRU layer, as blas_lstm.  xp: B*T*3H floats, hp: B*3H floats. */
void blas_gru(const float *x, const float *wih, const float *whh,
              const float *bih, const float *bhh, float *out, int B, int T,
              int NI, int H, float *xp, float *hp);
#endif

#endif
