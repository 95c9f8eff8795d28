export const systemClock = { now: () => new Date() };
/** A clock that only moves when told to: used by tests for idle expiry and certificate validity. */
export class ManualClock {
    current;
    constructor(start = new Date()) {
        this.current = start.getTime();
    }
    now() {
        return new Date(this.current);
    }
    advance(ms) {
        this.current += ms;
    }
}
//# sourceMappingURL=clock.js.map