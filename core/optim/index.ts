export * from './adam';
export * from './state';
