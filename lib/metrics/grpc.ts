import type { Counter } from './prometheus.js';

/** grpc-js status code names, for the grpc calls counter. */
const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/**
 * Wraps a gRPC service implementation so each unary call (handler(call, callback)) and each stream
 * (handler(call)) is counted. Unary calls are counted with the status they answer; streams as
 * started and with the status of their end ('OK' on finish, the error's code on error).
 */
export function instrumentGrpc<T extends object>(
  impl: T,
  metrics: { grpcCalls: Counter; grpcInFlight: Counter },
): T {
  const out: Record<string, unknown> = {};
  for (const [method, fn] of Object.entries(impl)) {
    if (typeof fn !== 'function') {
      out[method] = fn;
      continue;
    }
    out[method] = function (this: unknown, call: any, callback?: (err: any, value?: unknown) => void) {
      metrics.grpcInFlight.inc({ method });
      if (typeof callback === 'function') {
        return (fn as Function).call(this, call, (err: any, ...rest: unknown[]) => {
          const code = err ? (GRPC_CODES[err.code ?? 2] ?? 'UNKNOWN') : 'OK';
          metrics.grpcCalls.inc({ method, code });
          return callback(err, ...rest);
        });
      }
      let done = false;
      const finish = (code: string) => {
        if (done) return;
        done = true;
        metrics.grpcCalls.inc({ method, code });
      };
      call?.on?.('finish', () => finish('OK'));
      call?.on?.('error', (err: any) => finish(GRPC_CODES[err?.code ?? 2] ?? 'UNKNOWN'));
      call?.on?.('cancelled', () => finish('CANCELLED'));
      return (fn as Function).call(this, call);
    };
  }
  return out as T;
}
