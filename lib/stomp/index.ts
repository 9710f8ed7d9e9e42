export * from './errors.js';
export * from './escaping.js';
export * from './frame.js';
export * from './limits.js';
export * from './parser.js';
export * from './serializer.js';
export * from './repeated-strings.js';
