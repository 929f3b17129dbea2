export * from './evaluate';
export * from './predict';
