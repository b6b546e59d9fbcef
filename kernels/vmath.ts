// Shared math of the kernels (not kernels themselves: index.ts does not re-export this file).

const EXP_HI: f32 = 88.7228391; // ln(FLT_MAX)
const EXP_LO: f32 = -87.3365448; // ln(FLT_MIN): below, the result is flushed to 0

/** e^x per lane (Cephes expf: Cody-Waite reduction, degree-5 polynomial; within 2 ulp), inf/0 outside the range. */
// @ts-ignore: decorator
@inline export function expv(x: v128): v128 {
  // pmax/pmin: one instruction each (min/max's NaN and -0 rules cost V8 a sequence); NaN in x stays NaN.
  const xc = f32x4.pmin(f32x4.pmax(x, f32x4.splat(EXP_LO)), f32x4.splat(EXP_HI));
  const fx = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(xc, f32x4.mul(fx, f32x4.splat(0.693359375)));
  r = f32x4.add(r, f32x4.mul(fx, f32x4.splat(2.12194440e-4)));
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(y, r), r), r), f32x4.splat(1));
  // 2^n in two factors so that n = -126 and n = 128 stay representable.
  const n = i32x4.trunc_sat_f32x4_s(fx);
  const n1 = i32x4.shr_s(n, 1), n2 = i32x4.sub(n, n1), bias = i32x4.splat(127);
  y = f32x4.mul(f32x4.mul(y, i32x4.shl(i32x4.add(n1, bias), 23)), i32x4.shl(i32x4.add(n2, bias), 23));
  y = v128.bitselect(f32x4.splat(Infinity), y, f32x4.gt(x, f32x4.splat(EXP_HI)));
  return v128.bitselect(f32x4.splat(0), y, f32x4.lt(x, f32x4.splat(EXP_LO)));
}

/** e^x: expv's formula on one value (the same operations, so SIMD tails match the lanes). */
export function expf(x: f32): f32 {
  if (x != x) return x;
  if (x > EXP_HI) return Infinity;
  if (x < EXP_LO) return 0;
  const fx = nearest<f32>(x * <f32>1.44269504088896341);
  let r = x - fx * <f32>0.693359375;
  r = r + fx * <f32>2.12194440e-4;
  let y: f32 = 1.9875691500e-4;
  y = y * r + <f32>1.3981999507e-3;
  y = y * r + <f32>8.3334519073e-3;
  y = y * r + <f32>4.1665795894e-2;
  y = y * r + <f32>1.6666665459e-1;
  y = y * r + <f32>5.0000001201e-1;
  y = y * r * r + r + 1;
  const n = <i32>fx, n1 = n >> 1, n2 = n - n1;
  return y * reinterpret<f32>((n1 + 127) << 23) * reinterpret<f32>((n2 + 127) << 23);
}

