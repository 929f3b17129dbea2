export * from './stack/index';
