export * from './manifest';
export * from './recipe';
export * from './build';
export * from './config';
export * from './report';
