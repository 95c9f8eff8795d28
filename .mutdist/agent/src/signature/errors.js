// Typed failures of the signature service; callers map `status`/`code` to their wire format.
export class SignatureError extends Error {
    status;
    code;
    constructor(status, code, message) {
        super(message);
        this.status = status;
        this.code = code;
        this.name = new.target.name;
    }
}
/** No domain with this UUID on this host. */
export class NotFoundError extends SignatureError {
    serverId;
    constructor(serverId) {
        super(404, 'NOT_FOUND', `no instance with server_id ${serverId} on this host`);
        this.serverId = serverId;
    }
}
/** A baseline exists and the caller did not ask to replace it. */
export class AlreadySignedError extends SignatureError {
    serverId;
    constructor(serverId) {
        super(409, 'ALREADY_SIGNED', `instance ${serverId} is already signed; replace the signature to re-sign it`);
        this.serverId = serverId;
    }
}
/** The operation needs a baseline and there is none. */
export class NotSignedError extends SignatureError {
    serverId;
    constructor(serverId) {
        super(404, 'NOT_SIGNED', `instance ${serverId} has no signature`);
        this.serverId = serverId;
    }
}
/** The operation needs the instance shut off. */
export class DomainStateError extends SignatureError {
    serverId;
    state;
    constructor(serverId, state) {
        super(409, 'INVALID_STATE', `instance ${serverId} is ${state}; it must be shut off`);
        this.serverId = serverId;
        this.state = state;
    }
}
/** Files the definition points at could not be hashed (missing, unreadable). */
export class ArtifactError extends SignatureError {
    serverId;
    problems;
    constructor(serverId, problems) {
        super(422, 'ARTIFACT_UNREADABLE', `cannot sign ${serverId}: ${problems.map((p) => `${p.path}: ${p.reason}`).join('; ')}`);
        this.serverId = serverId;
        this.problems = problems;
    }
}
//# sourceMappingURL=errors.js.map