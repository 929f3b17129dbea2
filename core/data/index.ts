export * from './dataset';
export * from './rng';
export * from './sources';
export * from './tasks';
