// Messages between the HashEngine (main thread) and its hash workers. The file descriptor is opened
// by the engine and shared: worker threads live in the same process, so they read the same open file
// with positional reads. Only the chunk digests travel back (transferred, not copied).
export {};
//# sourceMappingURL=protocol.js.map