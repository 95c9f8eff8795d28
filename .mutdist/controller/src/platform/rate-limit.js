/**
 * Counts failures per key in a sliding window. Once a key reaches the limit, every attempt for it
 * (even a correct one) is refused until old failures leave the window: that is what stops guessing.
 */
export class FailureLimiter {
    limit;
    windowMs;
    clock;
    failures = new Map();
    constructor(limit, windowMs, clock) {
        this.limit = limit;
        this.windowMs = windowMs;
        this.clock = clock;
    }
    isBlocked(key) {
        return this.recent(key).length >= this.limit;
    }
    recordFailure(key) {
        const recent = this.recent(key);
        recent.push(this.clock.now().getTime());
        this.failures.set(key, recent);
    }
    /** Seconds until the key is allowed again (for Retry-After). */
    retryAfterSeconds(key) {
        const oldest = this.recent(key)[0];
        if (oldest === undefined)
            return 0;
        return Math.max(1, Math.ceil((oldest + this.windowMs - this.clock.now().getTime()) / 1000));
    }
    recent(key) {
        const cutoff = this.clock.now().getTime() - this.windowMs;
        const list = (this.failures.get(key) ?? []).filter((t) => t > cutoff);
        if (list.length === 0)
            this.failures.delete(key);
        return list;
    }
}
//# sourceMappingURL=rate-limit.js.map