export { HashEngine, diffChunks, sameIdentity } from './engine.js';
export type { FileDigest, HashEngineOptions, HashFileOptions } from './engine.js';
export type { FileIdentity } from './identity.js';
export { CHUNK_SIZE, composeFileDigest, zeroChunkDigest } from './digest.js';
