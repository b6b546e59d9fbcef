/** Multi-head self-attention and a pre-LN transformer block. */
import { Tensor } from '../core/tensor.js';
import { add, full, matmul, mulScalar, permute, reshape, slice, softmax } from '../ops/index.js';
import { Rng } from '../util/rng.js';
import { Dropout, GELU, LayerNorm, Linear, Sequential } from './layers.js';
import { Module } from './module.js';

/** [T, T] additive mask: 0 on and below the diagonal, -1e9 above (no attention to the future). */
function causalMask(T: number, dtype: Tensor['dtype']): Tensor {
  const m = full([T, T], 0, dtype);
  const v = m.data();
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) v[i * T + j] = -1e9;
  return m;
}

/** Self-attention over x [B, T, D] -> [B, T, D], with `heads` heads; optionally causal. */
export class MultiheadAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(readonly dim: number, readonly heads: number, readonly causal = false, rng = new Rng(0)) {
    super();
    if (dim % heads !== 0) throw new Error(`MultiheadAttention: dim ${dim} is not divisible by heads ${heads}`);
    this.qkv = this.registerModule('qkv', new Linear(dim, 3 * dim, { rng }));
    this.proj = this.registerModule('proj', new Linear(dim, dim, { rng }));
  }
  forward(x: Tensor): Tensor {
    const [B, T, D] = x.shape as [number, number, number];
    const H = this.heads, hd = D / H;
    // [B, T, 3D] -> [3, B*H, T, hd]: q, k, v for every (sample, head).
    const heads = reshape(permute(reshape(this.qkv.call(x), [B, T, 3, H, hd]), [2, 0, 3, 1, 4]), [3, B * H, T, hd]);
    const part = (i: number) => reshape(slice(heads, [[i, i + 1]]), [B * H, T, hd]);
    let scores = mulScalar(matmul(part(0), part(1), { transB: true }), 1 / Math.sqrt(hd));
    if (this.causal) scores = add(scores, causalMask(T, x.dtype));
    const attended = matmul(softmax(scores), part(2)); // [B*H, T, hd]
    const merged = reshape(permute(reshape(attended, [B, H, T, hd]), [0, 2, 1, 3]), [B, T, D]);
    return this.proj.call(merged);
  }
}

/** Pre-LN transformer block: x + attn(ln(x)), then + mlp(ln(x)) with a 4x GELU MLP. */
export class TransformerBlock extends Module {
  readonly ln1: LayerNorm;
  readonly attn: MultiheadAttention;
  readonly ln2: LayerNorm;
  readonly mlp: Sequential;
  constructor(dim: number, heads: number, causal = false, dropout = 0, rng = new Rng(0)) {
    super();
    this.ln1 = this.registerModule('ln1', new LayerNorm(dim));
    this.attn = this.registerModule('attn', new MultiheadAttention(dim, heads, causal, rng));
    this.ln2 = this.registerModule('ln2', new LayerNorm(dim));
    this.mlp = this.registerModule('mlp', new Sequential(new Linear(dim, 4 * dim, { rng }), GELU(), new Linear(4 * dim, dim, { rng }), new Dropout(dropout, rng.nextU32())));
    this.finalize();
  }
  forward(x: Tensor): Tensor {
    const h = add(x, this.attn.call(this.ln1.call(x)));
    return add(h, this.mlp.call(this.ln2.call(h)));
  }
}
