/** Progress of `suite build` and `suite report` (also used by `demo`): bars on a terminal, plain lines otherwise. */
import { MultiBar, Presets, SingleBar } from 'cli-progress';
import type { BuildEvent } from '../core/suite/build';
import type { ReportEvent } from '../core/suite/report';

/** Progress of a build: bars on a terminal, plain lines otherwise (both on stderr). */
export function buildProgress(tty: boolean): { onEvent: (e: BuildEvent) => void; stop: () => void } {
  const log = (s: string) => process.stderr.write(s + '\n');
  if (!tty) {
    let lastPre = 0;
    return {
      onEvent: (e) => {
        if (e.phase === 'data')
          log(e.state === 'start' ? `data: building ${e.tasks} tasks` : `data: done in ${e.seconds}s`);
        else if (e.phase === 'pretrain') {
          if (e.step === e.total || Date.now() - lastPre > 10_000) {
            lastPre = Date.now();
            log(`pretrain: step ${e.step}/${e.total} loss ${e.loss.toFixed(3)}`);
          }
        } else if (e.phase === 'pretrain-done')
          log(`pretrain: done in ${e.seconds}s (loss ${e.lossStart.toFixed(3)} -> ${e.lossEnd.toFixed(3)})`);
        else if (e.phase === 'task-done')
          log(
            `fine-tune [${e.done}/${e.total}] ${e.task}: ${e.seconds.toFixed(1)}s (loss ${e.lossStart.toFixed(3)} -> ${e.lossEnd.toFixed(3)})`,
          );
        else if (e.phase === 'write' && e.state === 'done') log(`suite written in ${e.seconds}s`);
      },
      stop: () => undefined,
    };
  }
  const multi = new MultiBar(
    {
      format: ' {name} |{bar}| {value}/{total} {extra}',
      hideCursor: true,
      clearOnComplete: false,
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  let pre: SingleBar | undefined;
  let models: SingleBar | undefined;
  const running = new Map<string, SingleBar>();
  return {
    onEvent: (e) => {
      if (e.phase === 'data') {
        if (e.state === 'start') multi.log(`building task data (${e.tasks} tasks)\n`);
        else multi.log(`task data done in ${e.seconds}s\n`);
      } else if (e.phase === 'pretrain') {
        pre ??= multi.create(e.total, 0, { name: 'pretrain'.padEnd(20), extra: '' });
        pre.update(e.step, { extra: `loss ${e.loss.toFixed(3)}` });
      } else if (e.phase === 'pretrain-done') {
        models = multi.create(24, 0, { name: 'models'.padEnd(20), extra: '' });
      } else if (e.phase === 'task') {
        let b = running.get(e.task);
        if (!b) {
          b = multi.create(e.total, 0, { name: e.task.padEnd(20), extra: '' });
          running.set(e.task, b);
        }
        b.update(e.step, { extra: `loss ${e.loss.toFixed(3)}` });
      } else if (e.phase === 'task-done') {
        const b = running.get(e.task);
        if (b) {
          multi.remove(b);
          running.delete(e.task);
        }
        models?.setTotal(e.total);
        models?.update(e.done, { extra: `last: ${e.task} (${e.seconds.toFixed(1)}s, loss ${e.lossEnd.toFixed(3)})` });
      }
    },
    stop: () => multi.stop(),
  };
}

export function reportProgress(): (e: ReportEvent) => void {
  const log = (s: string) => process.stderr.write(s + '\n');
  return (e) => {
    if (e.phase === 'merge')
      log(e.state === 'start' ? `merging: ${e.row}` : `merged ${e.row} in ${e.seconds?.toFixed(1)}s`);
    else if (e.phase === 'row')
      log(`evaluated ${e.row.label.padEnd(16)} avg ${(e.row.average * 100).toFixed(1)} (${e.row.seconds.toFixed(1)}s)`);
    else if (e.phase === 'validity' && (e.done === 1 || e.done === e.total || e.done % 5 === 0))
      log(`validity sweep: ${e.done}/${e.total} (${e.point})`);
  };
}
