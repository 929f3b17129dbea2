/** One line describing the machine a bench ran on, for bench/RESULTS.md. */
import * as os from 'node:os';
import { installedBackends } from '../../core/tensor/backend';
import { readNativeStamp } from '../../core/tensor/native';

export function describeMachine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  const gib = (os.totalmem() / 1024 ** 3).toFixed(1);
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  const stamp = readNativeStamp();
  const native = stamp ? `tensorflow (TF ${stamp.tensorflow} ${stamp.variant} wheel)` : 'tensorflow';
  const backends = installedBackends()
    .map((b) => (b === 'tensorflow' ? native : b))
    .join(', ');
  return (
    `${model}, ${cpus.length} cores, ${gib} GiB memory, Node ${process.version}, ${os.platform()} ${os.arch()}; ` +
    `tensor backends: ${backends}; load average at start ${load}`
  );
}
