/** Where the stack keeps its binaries, data, logs, pid files and stack.env. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ServiceName, StackOptions } from './types';

/** The repository (package) root: the nearest folder above this file with mergeflow's package.json. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    try {
      if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'mergeflow') return dir;
    } catch {
      /* keep looking */
    }
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

export function stackHome(home?: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(home ?? (env.MERGEFLOW_HOME || path.join(repoRoot(), '.mergeflow')));
}

export interface Paths {
  home: string;
  bin: string;
  temporalBin: string;
  minioBin: string;
  weedBin: string;
  temporalDir: string;
  temporalDb: string;
  minioDir: string;
  seaweedDir: string;
  logs: string;
  pids: string;
  envFile: string;
}

export function paths(opts: StackOptions): Paths {
  const env = opts.env ?? process.env;
  const home = stackHome(opts.home, env);
  const bin = path.resolve(opts.binDir ?? (env.MERGEFLOW_BIN || path.join(home, 'bin')));
  return {
    home,
    bin,
    temporalBin: path.join(bin, 'temporal'),
    minioBin: path.join(bin, 'minio'),
    weedBin: path.join(bin, 'weed'),
    temporalDir: path.join(home, 'temporal'),
    temporalDb: path.join(home, 'temporal', 'dev.db'),
    minioDir: path.join(home, 'minio'),
    seaweedDir: path.join(home, 'seaweedfs'),
    logs: path.join(home, 'logs'),
    pids: path.join(home, 'pids'),
    envFile: path.join(home, 'stack.env'),
  };
}

export const logFile = (p: Paths, svc: ServiceName) =>
  path.join(p.logs, svc === 'temporal' ? 'temporal.log' : 's3.log');
export const pidFile = (p: Paths, svc: ServiceName) => path.join(p.pids, `${svc}.pid`);
export const infoFile = (p: Paths, svc: ServiceName) => path.join(p.pids, `${svc}.json`);
