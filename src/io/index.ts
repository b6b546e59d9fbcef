export * from './safetensors.js';
export * from './checkpoint.js';
