export * from './trainer.js';
