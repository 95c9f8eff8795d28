export { HashEngine, algorithmOf, diffChunks, sameIdentity } from './engine.js';
export type { FileDigest, HashEngineOptions, HashFileOptions } from './engine.js';
export type { FileIdentity } from './identity.js';
export {
  CHUNK_SIZE,
  DIGEST_ALGORITHMS,
  composeFileDigest,
  digestOf,
  isDigestAlgorithm,
  zeroChunkDigest,
} from './digest.js';
export type { DigestAlgorithm } from './digest.js';
