/**
 * The one error type services throw. Each REST group renders it in its own wire format
 * (OpenZiti envelope, access-API `{error, code}`, COmanage ErrorResponse, Sign API `{error}`).
 */
export interface FieldProblem {
  field: string;
  reason: string;
  value?: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    override readonly cause?: FieldProblem,
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string, cause?: FieldProblem) =>
  new ApiError(400, code, message, cause);
export const unauthorized = (code: string, message: string, cause?: FieldProblem) =>
  new ApiError(401, code, message, cause);
export const forbidden = (message: string) => new ApiError(403, 'FORBIDDEN', message);
export const notFound = (message: string) => new ApiError(404, 'NOT_FOUND', message);
export const conflict = (code: string, message: string) => new ApiError(409, code, message);
