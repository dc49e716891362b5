"""gen_programs.py OUT_DIR N [SEED]: N random well-typed .attn programs.

Byte-level fuzzing of the pipeline mostly breaks programs before they reach
the passes and code generation; these programs reach them, with shapes and
op combinations nobody wrote by hand (broadcasts, batch dims, fused chains
next to layers, outputs that alias).  They seed fuzz/corpus/pipeline
(gp_*.attn) and can be replayed in bulk:

    python3 fuzz/gen_programs.py /tmp/progs 2000 && build/fuzz/replay_pipeline /tmp/progs

The generator tracks each value's shape; it only has to be right often
enough to be useful (the checker rejects the rest cleanly).

With a fourth argument `big` (gp_big_*.attn) it also draws sizes near and
past the limits of docs/security.md: positional encodings, hidden sizes and
fixed dims large enough that only a bound on what code generation
materializes keeps the compile small (fuzz/compile_budget.sh compiles the
ones --check accepts under a memory limit)."""
import os
import random
import sys

UNARY = ["relu", "gelu", "silu", "sigmoid", "tanh", "exp", "log", "sqrt", "dropout"]


class Gen:
    def __init__(self, rnd, big=False):
        self.r = rnd
        self.big = big
        self.bigs = []          # names of the values big mode made
        self.vals = []          # (name, shape): shape a tuple of dims, "T"/"S"/"B" or ints
        self.decls = []
        self.n = 0

    def fresh(self, p="v"):
        self.n += 1
        return "%s%d" % (p, self.n)

    def add(self, expr, shape, kind="let"):
        name = self.fresh()
        self.decls.append("  %s %s = %s" % (kind, name, expr))
        self.vals.append((name, shape))
        return name

    def layer(self, text):
        name = self.fresh("l")
        self.decls.append("  layer %s = %s" % (name, text))
        return name

    def pick(self, pred=lambda s: True):
        c = [v for v in self.vals if pred(v[1])]
        return self.r.choice(c) if c else None

    def step(self):
        r = self.r
        k = r.randrange(21 if self.big else 19)
        v = self.pick()
        name, s = v
        if k == 0:
            f = r.choice(UNARY)
            arg = ", %s" % r.choice(["0.1", "0"]) if f == "dropout" else ""
            return self.add("%s(%s%s)" % (f, name, arg), s)
        if k == 1:
            w = self.pick(lambda t: t == s) or v
            return self.add("%s %s %s" % (name, r.choice("+-*/"), w[0]), s)
        if k == 2:
            return self.add("%s %s %s" % (name, r.choice("+-*/"), r.choice(["2", "0.5", "1e-3", "(1 / 3)"])), s)
        if k == 3 and len(s) >= 1:
            return self.add("softmax(%s, axis=%d)" % (name, r.randrange(-len(s), len(s))), s)
        if k == 4 and len(s) >= 1:
            ax = r.randrange(len(s))
            return self.add("%s(%s, axis=%d)" % (r.choice(["sum", "mean", "max"]), name, ax), s[:ax] + s[ax + 1:])
        if k == 5 and len(s) >= 2:
            w = self.pick(lambda t: len(t) >= 2 and t[-1] == s[-1] and t[:-2] == s[:-2])
            if w:
                return self.add("%s @ transpose(%s)" % (name, w[0]), s[:-1] + (w[1][-2],))
        if k == 6 and len(s) >= 1 and isinstance(s[-1], int):
            d2 = r.choice([1, 3, 4, 8, 16])
            l = self.layer("Linear(%d, %d%s)" % (s[-1], d2, r.choice(["", ", bias=false"])))
            return self.add("%s(%s)" % (l, name), s[:-1] + (d2,))
        if k == 7 and len(s) >= 1 and isinstance(s[-1], int):
            l = self.layer("LayerNorm(%d)" % s[-1])
            return self.add("%s(%s)" % (l, name), s)
        if k == 8 and 2 <= len(s) <= 3 and isinstance(s[-1], int):
            kv = self.pick(lambda t: len(t) == len(s) and t[-1] == s[-1] and t[:-2] == s[:-2]) or v
            mask = r.choice(["", ", mask=causal"])
            return self.add("attention(%s, %s, %s%s)" % (name, kv[0], kv[0], mask), s)
        if k == 9 and 2 <= len(s) <= 3 and isinstance(s[-1], int) and s[-1] % 2 == 0:
            l = self.layer("MultiheadAttention(%d, heads=%d)" % (s[-1], r.choice([1, 2])))
            mask = r.choice(["", ", mask=causal"])
            return self.add("%s(%s, %s, %s%s)" % (l, name, name, name, mask), s)
        if k == 10 and len(s) >= 2 and isinstance(s[-1], int):
            h = r.choice([2, 5, 8])
            l = self.layer("%s(%d, %d%s)" % (r.choice(["LSTM", "GRU"]), s[-1], h, r.choice(["", ", layers=2"])))
            return self.add("%s(%s)" % (l, name), s[:-1] + (h,))
        if k == 11 and len(s) >= 1 and isinstance(s[0], int):
            i = r.randrange(-s[0], s[0])
            return self.add("%s[%d]" % (name, i), s[1:])
        if k == 11 and len(s) >= 1:
            return self.add("%s[%d]" % (name, r.choice([0, -1])), s[1:])
        if k == 12 and len(s) >= 1 and isinstance(s[-1], int):
            w = self.pick(lambda t: t[:-1] == s[:-1] and len(t) == len(s) and isinstance(t[-1], int))
            if w:
                return self.add("concat(%s, %s, axis=-1)" % (name, w[0]), s[:-1] + (s[-1] + w[1][-1],))
        if k == 13 and 2 <= len(s) <= 3 and isinstance(s[-1], int) and s[-1] % 2 == 0:
            sp = self.add("split_heads(%s, 2)" % name, s[:-2] + (2, s[-2], s[-1] // 2))
            return self.add("merge_heads(%s)" % sp, s)
        if k == 14 and len(s) >= 2:
            return self.add("transpose(%s)" % name, s[:-2] + (s[-1], s[-2]))
        if k == 15 and 2 <= len(s) <= 3 and isinstance(s[-1], int):
            kv = self.pick(lambda t: len(t) == len(s) and isinstance(t[-1], int) and t[:-2] == s[:-2]) or v
            h = r.choice([3, 8])
            l = self.layer("AdditiveAttention(%d, %d, hidden=%d)" % (s[-1], kv[1][-1], h))
            return self.add("%s(%s, %s)" % (l, name, kv[0]), s)
        if k == 16 and len(s) == 2 and s[0] == "T" and isinstance(s[1], int) and s[1] % 2 == 0:
            return self.add("%s + positional_encoding(T, %d)" % (name, s[1]), s)
        if k == 17:
            ids = self.fresh("ids")
            self.decls.insert(0, "  input %s: i32[T]" % ids)
            d = r.choice([4, 8])
            l = self.layer("Embedding(%d, %d)" % (r.choice([1, 10, 300]), d))
            return self.add("%s(%s)" % (l, ids), ("T", d))
        if k == 18 and len(s) >= 2 and isinstance(s[-1], int):
            m = self.fresh("mask")
            self.decls.insert(0, "  input %s: f32[%s, %s]" % (m, s[-2], s[-2]))
            return self.add("attention(%s, %s, %s, mask=%s)" % (name, name, name, m), s)
        if k == 19:
            d = r.choice([65536, 65538, 1 << 20, 1 << 30])
            self.bigs.append(self.add("positional_encoding(T, %d)" % d, ("T", d)))
            return self.bigs[-1]
        if k == 20 and 2 <= len(s) <= 3 and isinstance(s[-1], int):
            h = r.choice([1 << 14, 1 << 20, 1 << 40])
            l = self.layer("AdditiveAttention(%d, %d, hidden=%d)" % (s[-1], s[-1], h))
            self.bigs.append(self.add("%s(%s, %s)" % (l, name, name), s))
            return self.bigs[-1]
        return None

    def program(self, model="m"):
        r = self.r
        d = r.choice([4, 8, 16])
        shapes = [("T", d), ("B", "T", d), ("T", d), ("S", d), (d,), ("T", 1), (1, "T", d),
                  ("B", 2, "T", d), (), (3, d), ("T", "K")]
        if self.big:
            shapes += [(1 << 24, 1), (1 << 20, d), ("T", 1 << 20)]
        for i in range(r.randrange(1, 4)):
            s = r.choice(shapes)
            name = "x%d" % i
            self.decls.append("  input %s: f32[%s]" % (name, ", ".join(map(str, s))))
            self.vals.append((name, s))
        for _ in range(r.randrange(1, 12)):
            self.step()
        outs = self.r.sample(self.vals, min(len(self.vals), r.randrange(1, 4)))
        if self.big:   # a big value must be live, or DCE drops it
            outs = [v for v in self.vals if v[0] in self.bigs][-2:] + self.vals[-1:]
        for i, (name, s) in enumerate(outs):
            self.decls.append("  output y%d = %s" % (i, name))
        return "model %s {\n%s\n}\n" % (model, "\n".join(self.decls))


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    big = len(sys.argv) > 4 and sys.argv[4] == "big"
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(seed)
    for i in range(n):
        with open(os.path.join(out, "gp_%s%05d.attn" % ("big_" if big else "", i)), "w") as f:
            f.write(Gen(rnd, big).program())


if __name__ == "__main__":
    main()
