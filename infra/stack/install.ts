/** Installing the temporal and minio binaries (infra/install.sh) when they are missing. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot, type Paths } from './paths';
import { StackError } from './types';

export function binaryPresent(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export async function runInstall(p: Paths, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const script = path.join(repoRoot(), 'infra', 'install.sh');
  if (!fs.existsSync(script)) {
    throw new StackError(`binaries missing in ${p.bin} and ${script} not found: install temporal and minio there`);
  }
  log(`stack: installing binaries into ${p.bin} (infra/install.sh)`);
  const child = spawn('bash', [script], {
    env: { ...env, MERGEFLOW_HOME: p.home, MERGEFLOW_BIN: p.bin },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let lastErr = '';
  const forward = (buf: Buffer, isErr: boolean) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line) continue;
      if (isErr) lastErr = line;
      if (!line.startsWith('install: error: ')) log(line); // that one is thrown below
    }
  };
  child.stdout.on('data', (b: Buffer) => forward(b, false));
  child.stderr.on('data', (b: Buffer) => forward(b, true));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  if (code !== 0)
    throw new StackError(lastErr.replace(/^install: error: /, '') || `infra/install.sh failed (exit ${code})`);
}
