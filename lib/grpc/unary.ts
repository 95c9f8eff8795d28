import * as grpc from '@grpc/grpc-js';
import { grpcError } from '../../proto/grpc-tls.js';

/** How one program's own errors read in gRPC terms. */
export interface GrpcErrorMapping {
  /** The status of one of the program's errors (sent with its message); undefined: not one of them. */
  statusOf(err: unknown): grpc.status | undefined;
  /** The message sent with INTERNAL for an error nothing else maps. */
  internalMessage(err: unknown): string;
}

/**
 * The adapters of a gRPC service to async handlers. Every error an answer carries goes through
 * toGrpc, and so through grpcError (messages cut to a bounded length): an error that already has a
 * gRPC status keeps it, the program's own errors get the status `mapping` gives them, anything else
 * is INTERNAL.
 */
export function grpcHandlers(mapping: GrpcErrorMapping) {
  const toGrpc = (err: unknown): grpc.ServiceError => {
    const e = err as grpc.ServiceError;
    if (typeof e?.code === 'number') return grpcError(e.code, String(e.details ?? e.message ?? ''));
    const code = mapping.statusOf(err);
    if (code !== undefined) return grpcError(code, (err as Error).message);
    return grpcError(grpc.status.INTERNAL, mapping.internalMessage(err));
  };

  /** Adapts an async handler to grpc-js's unary (call, callback) form. */
  const unary =
    <Req>(fn: (call: grpc.ServerUnaryCall<Req, unknown>) => unknown) =>
    (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>): void => {
      Promise.resolve()
        .then(() => fn(call))
        .then(
          (res) => callback(null, res),
          (err) => callback(toGrpc(err)),
        );
    };

  return { toGrpc, unary };
}
