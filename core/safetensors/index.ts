export * from './dtype';
export * from './header';
export * from './reader';
export * from './writer';
export * from './checkpoint';
export * from './finite';
