export * from './attributes';
export * from './metrics';
export * from './events';
