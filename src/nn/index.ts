export * from './module.js';
export * from './layers.js';
export * from './attention.js';
export * from './models.js';
export * from './summary.js';
