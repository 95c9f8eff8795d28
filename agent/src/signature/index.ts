export { canonicalDigest, canonicalDomainXml, configDigest, parseXml } from './canonical-xml.js';
export { DomainDefinition } from './domain-definition.js';
export type { XmlElement, XmlNode } from './canonical-xml.js';
export { backingChain, domainArtifacts } from './artifacts.js';
export type { BootArtifact, BootRole, DomainArtifacts, WritableDisk } from './artifacts.js';
export {
  canonicalJson,
  FILE_DIGEST_PREFIX,
  FILE_DIGEST_PREFIXES,
  isSealed,
  manifestAlgorithm,
  parseFileDigest,
} from './manifest.js';
export { verifyManifestOffline } from './offline.js';
export type { OfflineFileCheck, OfflineVerdict } from './offline.js';
export type { BootEntry, DiskEntry, InUseDisk, Manifest, SealedDisk } from './manifest.js';
export { NodeKey, NODE_KEY_FILE, publicKeyFingerprint, verifyManifest } from './node-key.js';
export {
  AlreadySignedError,
  ArtifactError,
  DomainStateError,
  NotFoundError,
  NotSignedError,
  SignatureError,
} from './errors.js';
export { SignatureService } from './service.js';
export type { Difference, StoredSignature, SignatureServiceOptions, Verdict } from './service.js';
