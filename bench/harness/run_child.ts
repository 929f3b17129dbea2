/**
 * Runs a script of dist/bench (adamerging_run.js, fw_run.js: each starts its own worker) as a child and reads
 * the JSON summary it prints.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export function benchRunChild<T>(script: string, args: string[]): Promise<T> {
  const file = path.resolve(__dirname, '..', script);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const from = out.indexOf('{\n');
      const to = out.lastIndexOf('\n}');
      if (code !== 0 || from < 0 || to < 0) {
        const why = err
          .trim()
          .split('\n')
          .filter((l) => !/already registered/.test(l))
          .slice(-3)
          .join(' | ');
        return reject(new Error(`${script} ${args.join(' ')} exited ${code}: ${why}`));
      }
      resolve(JSON.parse(out.slice(from, to + 2)) as T);
    });
  });
}

export const adamergingRunChild = <T>(args: string[]): Promise<T> => benchRunChild<T>('adamerging_run.js', args);
export const fwRunChild = <T>(args: string[]): Promise<T> => benchRunChild<T>('fw_run.js', args);
