import { ApiError } from '../platform/errors.js';
/** Turns whatever a route threw (ours, fastify's body/validation errors, bugs) into an ApiError. */
export function toApiError(err) {
    if (err instanceof ApiError)
        return err;
    const e = err;
    if (e.validation?.length) {
        const issue = e.validation[0];
        const base = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
        const field = issue.params?.missingProperty ?? issue.params?.additionalProperty ?? base ?? '';
        const where = e.validationContext ?? 'body';
        const path = [base, issue.params?.missingProperty ?? issue.params?.additionalProperty]
            .filter(Boolean)
            .join('.');
        const reason = issue.keyword === 'additionalProperties'
            ? `unknown field '${field}' is not allowed`
            : issue.keyword === 'required'
                ? `'${field}' is required`
                : `${path || where} ${issue.message ?? 'is invalid'}`;
        return new ApiError(400, 'COULD_NOT_VALIDATE', `invalid ${where}: ${reason}`, {
            field: field || where,
            reason,
        });
    }
    const status = e.statusCode ?? 500;
    if (status === 413)
        return new ApiError(413, 'REQUEST_TOO_LARGE', 'the request body is larger than 1 MiB');
    if (status === 415)
        return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', e.message);
    if (e.code?.startsWith('FST_ERR_CTP') || e.type === 'entity.parse.failed') {
        return new ApiError(status >= 400 && status < 500 ? status : 400, 'COULD_NOT_PARSE_BODY', `could not parse body: ${e.message}`);
    }
    if (status >= 400 && status < 500)
        return new ApiError(status, e.code ?? 'BAD_REQUEST', e.message);
    return new ApiError(500, 'UNHANDLED', 'internal error');
}
/** Installs the group's renderer for every error its routes raise. Bugs are logged, never echoed. */
export function handleErrorsWith(app, render) {
    app.setErrorHandler((err, request, reply) => {
        const apiError = toApiError(err);
        if (apiError.status >= 500)
            request.log.error({ err }, 'unhandled error');
        const retryAfter = apiError.retryAfter;
        if (retryAfter)
            void reply.header('retry-after', String(retryAfter));
        return render(apiError, request, reply);
    });
}
//# sourceMappingURL=errors.js.map