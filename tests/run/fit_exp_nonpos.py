"""fit_exp_nonpos.py: the polynomial of attnc.exp_nonpos (compiler/codegen/math.c).

Fits e^r on |r| <= ln2/2 with degree 6 for relative error (Lawson's
iteration toward minimax, in double), rounds the coefficients to f32, then
emulates the generated code in f32 (FMA rounding: one rounding per step)
over [-86, 8] (the online softmax lets scores pass its stale max by up to 8) and prints the worst relative error against exp in double.
Run with /usr/bin/python3 (NumPy); prints the coefficients, highest first
as math.c lists them.
"""
import numpy as np

h = np.log(2) / 2
deg = 6
n = 4000
x = h * np.cos(np.pi * (np.arange(n) + 0.5) / n)
A = np.vander(x, deg + 1, increasing=True) / np.exp(x)[:, None]
w = np.ones(n)
for _ in range(300):
    c = np.linalg.lstsq(A * np.sqrt(w)[:, None], np.sqrt(w), rcond=None)[0]
    e = np.abs(A @ c - 1)
    w *= e / e.sum() * n
    w /= w.mean()
c32 = c.astype(np.float32)
print("coefficients, highest first:", [float(v) for v in c32[::-1]])
print("fit error (double): %.3g" % np.abs(A @ c - 1).max())

f64 = np.float64
xs = np.concatenate([np.linspace(-86, 8, 2000001), -np.logspace(-8, 0, 10001)]).astype(np.float32)
L2E, M = np.float32(1.4426950408889634), np.float32(12582912.0)
tm = (xs.astype(f64) * f64(L2E) + f64(M)).astype(np.float32)      # fma
nn = (tm - M).astype(np.float32)
C1, C2 = np.float32(0.693359375), np.float32(-2.12194440e-4)
r = (nn.astype(f64) * -f64(C1) + xs).astype(np.float32)
r = (nn.astype(f64) * -f64(C2) + r).astype(np.float32)
acc = c32[-1]
for cc in c32[-2::-1]:
    acc = (acc.astype(f64) * r + f64(cc)).astype(np.float32)
res = np.ldexp(acc.astype(f64), nn.astype(np.int64))
rel = np.abs(res / np.exp(xs.astype(f64)) - 1)
print("f32 emulation over [-86, 8]: max relative error %.3g (%.2f ulp) at x = %g"
      % (rel.max(), rel.max() / 2**-23, xs[rel.argmax()]))
