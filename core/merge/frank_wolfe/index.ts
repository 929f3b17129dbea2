/**
 * FW-Merging (Frank-Wolfe merging) as pure core code: no Temporal, no I/O inside the math.
 *   params         the `frank_wolfe` method's parameter schema and defaults
 *   objective      f at θ (cross-entropy on labeled proxy rows, or entropy) and g = ∂f/∂θ per merged tensor
 *   oracle_scores  the LMO's additive per-candidate per-tensor sums; task-wise and layer-wise selection
 *   oracle         the streaming LMO: candidates read tensor by tensor from the store
 *   fw_hard        θ_{t+1} = θt + γt·scaling·(s − θt), TA (a coefficient table) or TIES (trimmed difference)
 *   fw_soft        one pick per target without repeats; layer-wise AdaMerging of the step sizes
 *   local_run      the in-process FW-Hard / FW-Soft loop
 */
export * from './params';
export * from './objective';
export * from './oracle_scores';
export * from './oracle';
export * from './fw_hard';
export * from './fw_soft';
export * from './local_run';
