/**
 * Gradients for the kernels mergeflow differentiates through (CLIP ViT forward, heads, entropy and
 * cross-entropy losses, merged weights θ0 + Σ λ τ).
 *
 * Why this exists: @tensorflow/tfjs-core's CommonJS build registers no gradients at all; only the union
 * package @tensorflow/tfjs (or tfjs-node, which pulls it in) does, and its register_all_gradients module
 * ships only as extensionless ESM that Node cannot load. Rather than depend on the whole union package
 * (webgl, layers, converter, data: ~250 MB), we register the gradients we need here. When the native
 * backend loads the union package anyway, core/tensor/native puts ours back over its gradients.
 *
 * Each gradient is checked against central finite differences in test/tensor-gradients.test.ts.
 * Importing this module registers them (idempotent).
 */
import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './matmul';

type T = tf.Tensor;
type GradFunc = (dy: T | T[], saved: T[], attrs: tf.NamedAttrMap) => Record<string, () => T>;

/** Sum a broadcast gradient back down to `shape` (the input's shape before broadcasting). */
export function reduceTo(grad: T, shape: readonly number[]): T {
  if (grad.shape.length === shape.length && grad.shape.every((d, i) => d === shape[i])) return grad;
  const axes = tf.backend_util.getReductionAxes([...shape], grad.shape);
  const summed = axes.length ? tf.sum(grad, axes) : grad;
  return tf.reshape(summed, [...shape]);
}

function axesOf(x: T, axis: unknown): number[] {
  // A null axis (reduce everything) means every axis.
  return axis == null ? x.shape.map((_, i) => i) : tf.util.parseAxisParam(axis as number | number[], x.shape);
}

/** The shape of a reduction's output with keepDims, so it broadcasts against the input. */
function keptShape(xShape: readonly number[], axes: number[]): number[] {
  return xShape.map((d, i) => (axes.includes(i) ? 1 : d));
}

const one = (dy: T | T[]): T => dy as T;

const binary = (f: (dy: T, a: T, b: T, y?: T) => [T, T], saveOutput = false) => ({
  inputsToSave: ['a', 'b'],
  outputsToSave: saveOutput ? [true] : undefined,
  gradFunc: ((dy, saved) => {
    const [a, b, y] = saved;
    return {
      a: () => reduceTo(f(one(dy), a, b, y)[0], a.shape),
      b: () => reduceTo(f(one(dy), a, b, y)[1], b.shape),
    };
  }) as GradFunc,
});

const unaryIn = (f: (dy: T, x: T) => T) => ({
  inputsToSave: ['x'],
  gradFunc: ((dy, [x]) => ({ x: () => f(one(dy), x) })) as GradFunc,
});

const unaryOut = (f: (dy: T, y: T) => T) => ({
  outputsToSave: [true],
  gradFunc: ((dy, [y]) => ({ x: () => f(one(dy), y) })) as GradFunc,
});

const mask = (cond: T): T => tf.cast(cond, 'float32');

const GRADS: Record<
  string,
  { inputsToSave?: string[]; outputsToSave?: boolean[]; saveAllInputs?: boolean; gradFunc: GradFunc }
> = {
  // Elementwise binary ops (inputs may broadcast).
  [tf.Add]: binary((dy) => [dy, dy]),
  [tf.Sub]: binary((dy) => [dy, tf.neg(dy)]),
  [tf.Multiply]: binary((dy, a, b) => [tf.mul(dy, tf.cast(b, 'float32')), tf.mul(dy, tf.cast(a, 'float32'))]),
  [tf.RealDiv]: binary((dy, a, b) => [tf.div(dy, b), tf.neg(tf.div(tf.mul(dy, a), tf.square(b)))]),
  [tf.Maximum]: binary((dy, a, b) => [tf.mul(dy, mask(tf.greaterEqual(a, b))), tf.mul(dy, mask(tf.less(a, b)))]),
  [tf.Minimum]: binary((dy, a, b) => [tf.mul(dy, mask(tf.lessEqual(a, b))), tf.mul(dy, mask(tf.greater(a, b)))]),
  [tf.SquaredDifference]: binary((dy, a, b) => {
    const d = tf.mul(dy, tf.mul(tf.sub(a, b), 2));
    return [d, tf.neg(d)];
  }),
  [tf.Pow]: binary((dy, a, b, y) => {
    const da = tf.mul(dy, tf.mul(b, tf.pow(a, tf.sub(b, 1))));
    const logA = tf.where(tf.greater(a, 0), tf.log(a), tf.zerosLike(a));
    return [da, tf.mul(dy, tf.mul(y as T, logA))];
  }, true),

  // Elementwise unary ops.
  [tf.Neg]: { gradFunc: (dy) => ({ x: () => tf.neg(one(dy)) }) },
  [tf.Identity]: { gradFunc: (dy) => ({ x: () => one(dy) }) },
  [tf.Cast]: { gradFunc: (dy) => ({ x: () => tf.clone(one(dy)) }) },
  [tf.Exp]: unaryOut((dy, y) => tf.mul(dy, y)),
  [tf.Log]: unaryIn((dy, x) => tf.div(dy, x)),
  [tf.Log1p]: unaryIn((dy, x) => tf.div(dy, tf.add(x, 1))),
  [tf.Sqrt]: unaryIn((dy, x) => tf.div(dy, tf.mul(tf.sqrt(x), 2))),
  [tf.Rsqrt]: unaryIn((dy, x) => tf.mul(dy, tf.div(tf.rsqrt(x), tf.mul(x, -2)))),
  [tf.Square]: unaryIn((dy, x) => tf.mul(dy, tf.mul(x, 2))),
  [tf.Reciprocal]: unaryIn((dy, x) => tf.neg(tf.div(dy, tf.square(x)))),
  [tf.Abs]: unaryIn((dy, x) => tf.mul(dy, tf.sign(x))),
  [tf.Sigmoid]: unaryOut((dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  [tf.Tanh]: unaryOut((dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)))),
  [tf.Erf]: unaryIn((dy, x) => tf.mul(dy, tf.mul(tf.exp(tf.neg(tf.square(x))), 2 / Math.sqrt(Math.PI)))),
  [tf.Relu]: unaryIn((dy, x) => tf.mul(dy, mask(tf.greater(x, 0)))),
  [tf.ClipByValue]: {
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const { clipValueMin: lo, clipValueMax: hi } = attrs as unknown as tf.ClipByValueAttrs;
        return tf.mul(one(dy), mask(tf.logicalAnd(tf.greaterEqual(x, lo), tf.lessEqual(x, hi))));
      },
    }),
  },
  [tf.Select]: {
    inputsToSave: ['condition'],
    gradFunc: (dy, [cond]) => ({
      condition: () => tf.zeros(cond.shape),
      t: () => tf.mul(one(dy), mask(cond)),
      e: () => tf.mul(one(dy), mask(tf.logicalNot(cond))),
    }),
  },

  // Sums of many.
  [tf.AddN]: {
    saveAllInputs: true,
    gradFunc: (dy, saved) => Object.fromEntries(saved.map((_, i) => [String(i), () => tf.clone(one(dy))])),
  },

  // Reductions.
  [tf.Sum]: {
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const axes = axesOf(x, (attrs as unknown as tf.SumAttrs).axis);
        return tf.mul(tf.reshape(one(dy), keptShape(x.shape, axes)), tf.onesLike(x));
      },
    }),
  },
  [tf.Mean]: {
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const axes = axesOf(x, (attrs as unknown as tf.MeanAttrs).axis);
        const count = axes.reduce((n, a) => n * x.shape[a], 1);
        return tf.mul(tf.reshape(tf.div(one(dy), count), keptShape(x.shape, axes)), tf.onesLike(x));
      },
    }),
  },
  // Max / Min: the gradient goes to every position equal to the extreme (as TensorFlow does).
  [tf.Max]: extremeGrad('reductionIndices'),
  [tf.Min]: extremeGrad('axis'),

  // Shape ops.
  [tf.Reshape]: { inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.reshape(one(dy), x.shape) }) },
  [tf.ExpandDims]: { inputsToSave: ['input'], gradFunc: (dy, [x]) => ({ input: () => tf.reshape(one(dy), x.shape) }) },
  [tf.Transpose]: {
    gradFunc: (dy, _s, attrs) => ({
      x: () => {
        const perm = (attrs as unknown as tf.TransposeAttrs).perm;
        const inv = new Array<number>(perm.length);
        perm.forEach((p, i) => (inv[p] = i));
        return tf.transpose(one(dy), inv);
      },
    }),
  },
  [tf.Slice]: {
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const g = one(dy);
        const b = (attrs as unknown as tf.SliceAttrs).begin;
        const begin = typeof b === 'number' ? [b, ...new Array<number>(x.rank - 1).fill(0)] : b;
        const pads = x.shape.map((d, i) => [begin[i], d - begin[i] - g.shape[i]] as [number, number]);
        return tf.pad(g, pads);
      },
    }),
  },
  [tf.Concat]: {
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam((attrs as unknown as tf.ConcatAttrs).axis, saved[0].shape)[0];
      let offset = 0;
      const entries = saved.map((t, i) => {
        const begin = t.shape.map((_, k) => (k === axis ? offset : 0));
        offset += t.shape[axis];
        return [String(i), () => tf.slice(one(dy), begin, t.shape)] as const;
      });
      return Object.fromEntries(entries);
    },
  },
  [tf.Pack]: {
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const g = one(dy);
      const axis = tf.util.parseAxisParam((attrs as unknown as tf.PackAttrs).axis, g.shape)[0];
      const size = g.shape.map((d, k) => (k === axis ? 1 : d));
      const entries = saved.map((t, i) => {
        const begin = g.shape.map((_, k) => (k === axis ? i : 0));
        return [String(i), () => tf.reshape(tf.slice(g, begin, size), t.shape)] as const;
      });
      return Object.fromEntries(entries);
    },
  },
  [tf.Unpack]: {
    gradFunc: (dys, _s, attrs) => ({ value: () => tf.stack(dys as T[], (attrs as unknown as tf.UnpackAttrs).axis) }),
  },
  [tf.Tile]: {
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        // [r0*d0, r1*d1, ...] -> [r0, d0, r1, d1, ...], sum over the repeat axes.
        const reps = (attrs as unknown as tf.TileAttrs).reps;
        const split = x.shape.flatMap((d, i) => [reps[i], d]);
        return tf.sum(
          tf.reshape(one(dy), split),
          x.shape.map((_, i) => 2 * i),
        );
      },
    }),
  },

  // Linear algebra and normalisation.
  [tf.BatchMatMul]: {
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => {
      const { transposeA: tA, transposeB: tB } = attrs as unknown as tf.BatchMatMulAttrs;
      const g = one(dy);
      const mm = (x: T, y: T, tx: boolean, ty: boolean) => matMul(x, y, tx, ty);
      let da: () => T;
      let db: () => T;
      if (!tA && !tB) [da, db] = [() => mm(g, b, false, true), () => mm(a, g, true, false)];
      else if (!tA && tB) [da, db] = [() => mm(g, b, false, false), () => mm(g, a, true, false)];
      else if (tA && !tB) [da, db] = [() => mm(b, g, false, true), () => mm(a, g, false, false)];
      else [da, db] = [() => mm(b, g, true, true), () => mm(g, a, true, true)];
      return { a: () => reduceTo(da(), a.shape), b: () => reduceTo(db(), b.shape) };
    },
  },
  [tf.Softmax]: {
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => ({
      logits: () => {
        const dim = (attrs as unknown as tf.SoftmaxAttrs).dim;
        const g = one(dy);
        return tf.mul(y, tf.sub(g, tf.sum(tf.mul(g, y), dim, true)));
      },
    }),
  },
};

function extremeGrad(axisAttr: 'reductionIndices' | 'axis') {
  return {
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: ((dy, [x, y], attrs) => ({
      x: () => {
        const axes = axesOf(x, attrs[axisAttr]);
        const kept = keptShape(x.shape, axes);
        return tf.mul(tf.reshape(one(dy), kept), mask(tf.equal(x, tf.reshape(y, kept))));
      },
    })) as GradFunc,
  };
}

/** Kernels this module knows how to differentiate. */
export const GRADIENT_KERNELS: readonly string[] = Object.keys(GRADS);

/**
 * Register every gradient above for kernels that have none yet; with `replace`, over any already there.
 * Safe to call many times. The native backend needs `replace`: loading tfjs-node loads the union package
 * @tensorflow/tfjs, whose gradients for SquaredDifference and broadcast BatchMatMul ignore broadcasting.
 */
export function registerGradients(replace = false): void {
  for (const [kernelName, cfg] of Object.entries(GRADS)) {
    if (!replace && tf.getGradient(kernelName)) continue;
    tf.registerGradient({ kernelName, ...cfg } as unknown as tf.GradConfig);
  }
}

registerGradients();
