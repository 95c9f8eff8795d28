export { canonicalDomainXml, configDigest, parseXml } from './canonical-xml.js';
export { backingChain, domainArtifacts } from './artifacts.js';
export { canonicalJson, FILE_DIGEST_PREFIX, isSealed } from './manifest.js';
export { NodeKey, NODE_KEY_FILE, publicKeyFingerprint, verifyManifest } from './node-key.js';
export { AlreadySignedError, ArtifactError, DomainStateError, NotFoundError, NotSignedError, SignatureError, } from './errors.js';
export { SignatureService } from './service.js';
//# sourceMappingURL=index.js.map