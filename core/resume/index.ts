export * from './work';
export * from './ledger';
export * from './record';
export * from './support';
