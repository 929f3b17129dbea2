/** Runs dist/bench/fw_run.js (it starts its own worker) as a child and reads the JSON summary it prints. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export function fwRunChild<T>(args: string[]): Promise<T> {
  const script = path.resolve(__dirname, '..', 'fw_run.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const from = out.indexOf('{\n');
      const to = out.lastIndexOf('\n}');
      if (code !== 0 || from < 0 || to < 0) {
        const why = err.trim().split('\n').slice(-3).join(' | ');
        return reject(new Error(`fw_run ${args.join(' ')} exited ${code}: ${why}`));
      }
      resolve(JSON.parse(out.slice(from, to + 2)) as T);
    });
  });
}
