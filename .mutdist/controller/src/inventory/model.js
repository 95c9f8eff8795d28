export const INSTANCE_STATES = ['running', 'shut off', 'paused', 'crashed', 'unknown'];
//# sourceMappingURL=model.js.map