// Typed failures of the signature service; callers map `status`/`code` to their wire format.
export class SignatureError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** No domain with this UUID on this host. */
export class NotFoundError extends SignatureError {
  constructor(readonly serverId: string) {
    super(404, 'NOT_FOUND', `no instance with server_id ${serverId} on this host`);
  }
}

/** A baseline exists and the caller did not ask to replace it. */
export class AlreadySignedError extends SignatureError {
  constructor(readonly serverId: string) {
    super(
      409,
      'ALREADY_SIGNED',
      `instance ${serverId} is already signed; replace the signature to re-sign it`,
    );
  }
}

/** The operation needs a baseline and there is none. */
export class NotSignedError extends SignatureError {
  constructor(readonly serverId: string) {
    super(404, 'NOT_SIGNED', `instance ${serverId} has no signature`);
  }
}

/** The operation needs the instance shut off. */
export class DomainStateError extends SignatureError {
  constructor(
    readonly serverId: string,
    readonly state: string,
  ) {
    super(409, 'INVALID_STATE', `instance ${serverId} is ${state}; it must be shut off`);
  }
}

/** Files the definition points at could not be hashed (missing, unreadable). */
export class ArtifactError extends SignatureError {
  constructor(
    readonly serverId: string,
    readonly problems: Array<{ path: string; reason: string }>,
  ) {
    super(
      422,
      'ARTIFACT_UNREADABLE',
      `cannot sign ${serverId}: ${problems.map((p) => `${p.path}: ${p.reason}`).join('; ')}`,
    );
  }
}

/** The stored baseline does not carry this node key's signature: it is never re-signed as it is. */
export class BaselineSignatureError extends SignatureError {
  constructor(readonly serverId: string) {
    super(
      409,
      'BASELINE_SIGNATURE_INVALID',
      `the baseline of ${serverId} does not verify with this node's key; re-sign the instance`,
    );
  }
}
