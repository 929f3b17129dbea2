/**
 * Peak RSS of the Frank-Wolfe oracle as the pool grows (issue 8: within 10 % from 8 to 32 candidates). Runs
 * bench/frank_wolfe_oracle_rss.js, which writes the pool to S3 and measures each pool size in a fresh child
 * process, once streamed (the worker's fwOracleShard) and once with every candidate held in memory first
 * (the baseline). Its markdown table is parsed here. --quick uses a smaller synthetic model.
 */
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { s3Unavailable } from '../harness/env';
import { Bench, figure, Figure } from '../harness/types';

const POOLS = [8, 16, 24, 32];
const GROWTH = 0.1;

interface Row {
  mode: 'stream' | 'hold';
  pool: number;
  peakMiB: number;
  seconds: number;
}

/** Rows of the script's table: | oracle | candidates | RSS before | peak RSS | peak − before | seconds |. */
export function parseRssTable(out: string): Row[] {
  const rows: Row[] = [];
  for (const line of out.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 8 || !/^(streamed|all held)/.test(cells[1])) continue;
    rows.push({
      mode: cells[1].startsWith('streamed') ? 'stream' : 'hold',
      pool: Number(cells[2]),
      peakMiB: Number(cells[4]),
      seconds: Number(cells[6]),
    });
  }
  return rows;
}

function runScript(args: string[], log: (line: string) => void): Promise<string> {
  const script = path.resolve(__dirname, '..', 'frank_wolfe_oracle_rss.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      for (const l of String(d).split('\n')) if (l.trim()) log(l.trim());
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`frank_wolfe_oracle_rss ${args.join(' ')} exited ${code}: ${err.trim().split('\n').pop()}`)),
    );
  });
}

export const bench: Bench = {
  name: 'fw_rss',
  description: `Frank-Wolfe oracle peak RSS at pools of ${POOLS.join(', ')} candidates, streamed vs all held in memory`,
  unavailable: s3Unavailable,
  async run({ quick, log }): Promise<Figure[]> {
    const size = quick ? { width: 64, layers: 2 } : { width: 192, layers: 4 };
    const out = await runScript(
      ['--width', size.width, '--layers', size.layers, '--pools', POOLS.join(',')].map(String),
      log,
    );
    const rows = parseRssTable(out);
    const at = (mode: Row['mode'], n: number) => {
      const r = rows.find((x) => x.mode === mode && x.pool === n);
      if (!r) throw new Error(`frank_wolfe_oracle_rss printed no ${mode} row for ${n} candidates`);
      return r;
    };
    const tag = `w${size.width}l${size.layers}${quick ? '.quick' : ''}`;
    const figures: Figure[] = POOLS.map((n) =>
      figure({
        name: `fw_rss.peak.${n}.${tag}`,
        value: at('stream', n).peakMiB,
        unit: 'MiB',
        baseline: `every candidate held in memory, ${n} candidates (same model, fresh process)`,
        baseline_value: at('hold', n).peakMiB,
        goal: null,
      }),
    );
    const first = at('stream', POOLS[0]).peakMiB;
    const last = at('stream', POOLS[POOLS.length - 1]).peakMiB;
    figures.push(
      figure({
        name: `fw_rss.growth_${POOLS[0]}_to_${POOLS[POOLS.length - 1]}.${tag}`,
        value: last,
        unit: 'MiB',
        baseline: `streamed peak RSS at ${POOLS[0]} candidates`,
        baseline_value: first,
        goal: `within ${GROWTH * 100} % (ratio <= ${1 + GROWTH})`,
        check: (_v, ratio) => ratio !== null && ratio <= 1 + GROWTH,
      }),
    );
    return figures;
  },
};
