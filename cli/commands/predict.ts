/** `mergeflow predict MODEL --inputs DATA --out OUT [--head HEAD]`: embeddings (and logits) as safetensors. */
import { Command } from 'commander';
import { intArg } from '../args';

export function predictCommand(): Command {
  return new Command('predict')
    .description(
      'write the embeddings (key `embeddings`) and, with a head, the logits (key `logits`) of a model on a dataset',
    )
    .argument('<model>', 'model folder: a path, file:// or s3:// URI')
    .requiredOption(
      '--inputs <data>',
      'dataset .safetensors (inputs [N, C, H, W]; preprocessing JSON beside it, if any)',
    )
    .requiredOption('--out <file>', 'output .safetensors')
    .option('--head <head>', 'classification head .safetensors (weight [classes, dim], optional logit_scale)')
    .option('--batch-size <n>', 'images per forward pass', intArg('--batch-size', 1), 256)
    .action(async (model: string, opts: { inputs: string; out: string; head?: string; batchSize: number }) => {
      const { predict } = await import('../../core/eval/predict');
      const r = await predict(model, opts.inputs, opts.out, { head: opts.head, batchSize: opts.batchSize });
      console.log(
        `wrote ${r.output.uri}: embeddings [${r.n}, ${r.dim}]${r.classes !== undefined ? `, logits [${r.n}, ${r.classes}]` : ''} (sha256 ${r.output.sha256.slice(0, 16)}…)`,
      );
    });
}
