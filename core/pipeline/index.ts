export * from './plan';
export * from './inputs';
export * from './ties_passes';
export * from './merge_shard';
export * from './publish';
export * from './run_types';
export * from './local';
