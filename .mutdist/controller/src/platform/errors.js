export class ApiError extends Error {
    status;
    code;
    cause;
    constructor(status, code, message, cause) {
        super(message);
        this.status = status;
        this.code = code;
        this.cause = cause;
    }
}
export const badRequest = (code, message, cause) => new ApiError(400, code, message, cause);
export const unauthorized = (code, message, cause) => new ApiError(401, code, message, cause);
export const forbidden = (message) => new ApiError(403, 'FORBIDDEN', message);
export const notFound = (message) => new ApiError(404, 'NOT_FOUND', message);
export const conflict = (code, message) => new ApiError(409, code, message);
//# sourceMappingURL=errors.js.map