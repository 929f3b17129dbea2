/**
 * AdaMerging and AdaMerging++ (Yang et al., ICLR 2024) as pure code: no Temporal, no I/O in the math.
 *   coefficients  λ layout (task-wise K, layer-wise K × L), init, clamp, summary
 *   merged        θ(λ) = θ0 + Σk λk τk as tf tensors differentiable in λ; the pullback to λ
 *   entropy       mean Shannon entropy of softmax(logits)
 *   gradient      one step's loss per task and ∂loss/∂λ, task by task
 *   batches       the unlabeled rows of each (seed, task, step), addressable by step
 *   ties_vectors  AdaMerging++'s per-task TIES-processed task vectors
 *   local_run     the in-process loop (loads through the existing loaders; the optimiser is passed in)
 * The durable run (workflows/adamerging_run.ts) uses these modules, not re-exported here:
 *   run_types     its payload shapes and store keys (pure; the workflow imports it)
 *   validate      header-only checks and the run's plan;  session  what a worker holds (θ0, τk, heads, data)
 *   epoch         N Adam steps with step-numbered checkpoints;  final_merge  λ → table → the linear kernel
 *   adam_step     the Adam update and loss record both modes share;  epoch_size  `steps_per_epoch: auto`
 *   parallel      `parallel: tasks`: one task's gradient to the store, and the reduce (sum in task order, Adam)
 *   publish       λ, losses, state, accuracy, report.png (report_chart), manifest
 */
export * from './coefficients';
export * from './merged';
export * from './entropy';
export * from './gradient';
export * from './batches';
export * from './ties_vectors';
export * from './local_run';
