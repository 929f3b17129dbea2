/**
 * The shape every benchmark shares, so `npm run bench` can run them all and write bench/results.json and
 * bench/RESULTS.md. A benchmark measures its figure and a baseline in the same process or command, and
 * says the goal it is held to (issue text), if any.
 */

/** One measured figure next to its baseline (written as one element of bench/results.json). */
export interface Figure {
  /** Stable id, e.g. `data_free.task_arithmetic.8models.wall`. */
  name: string;
  value: number;
  /** Unit of value and baseline_value: 's', 'GB/s', 'MB', 'ms/step', '%', 'x'. */
  unit: string;
  /** What the baseline is, in words (e.g. 'mergekit 0.1.5, same inputs', 'memcpy in this process'). */
  baseline: string | null;
  baseline_value: number | null;
  /** value / baseline_value (null without a baseline). */
  ratio: number | null;
  /** The goal in words, e.g. 'ratio <= 0.5' (null: no goal, the figure is informative). */
  goal: string | null;
  /** Whether the goal is met (null without a goal). */
  met: boolean | null;
}

/** Options every benchmark receives from the runner. */
export interface BenchOptions {
  /** A scratch folder of its own (removed afterwards unless --keep). */
  dir: string;
  /** --quick: smaller inputs for a smoke run (the figures then say so in their name). */
  quick: boolean;
  /** Progress lines (stderr); results go in the returned figures. */
  log: (line: string) => void;
}

export interface Bench {
  /** The name `npm run bench -- NAME` selects. */
  name: string;
  /** One line for `npm run bench -- --list`. */
  description: string;
  /** Why it cannot run here, or undefined when it can (e.g. mergekit not installed). */
  unavailable?: () => Promise<string | undefined>;
  run: (opts: BenchOptions) => Promise<Figure[]>;
}

/** A figure with its ratio and goal check filled in: `goal` is 'ratio <= X' or 'ratio >= X' or 'value <= X'. */
export function figure(
  f: Omit<Figure, 'ratio' | 'met'> & { check?: (value: number, ratio: number | null) => boolean },
): Figure {
  const ratio = f.baseline_value ? f.value / f.baseline_value : null;
  const { check, ...rest } = f;
  return { ...rest, ratio, met: f.goal && check ? check(f.value, ratio) : null };
}
