export { HashEngine, diffChunks, sameIdentity } from './engine.js';
export { CHUNK_SIZE, composeFileDigest, zeroChunkDigest } from './digest.js';
//# sourceMappingURL=index.js.map