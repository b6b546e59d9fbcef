export * from './safetensors.js';
export * from './checkpoint.js';
export * from './write.js';
