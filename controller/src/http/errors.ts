import { isInvalidText, isStoreUnavailable } from '../../../lib/store/errors.js';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, notFound } from '../platform/errors.js';
import { isUniqueViolation } from '../store/constraint.js';

export type RenderError = (err: ApiError, request: FastifyRequest, reply: FastifyReply) => unknown;

interface AjvIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** Turns whatever a route threw (ours, fastify's body/validation errors, bugs) into an ApiError. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
  if (e.validation?.length) {
    const issue = e.validation[0]!;
    const base = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const field =
      (issue.params?.missingProperty as string) ?? (issue.params?.additionalProperty as string) ?? base ?? '';
    const where = e.validationContext ?? 'body';
    const path = [base, issue.params?.missingProperty ?? issue.params?.additionalProperty]
      .filter(Boolean)
      .join('.');
    const reason =
      issue.keyword === 'additionalProperties'
        ? `unknown field '${field}' is not allowed`
        : issue.keyword === 'required'
          ? `'${field}' is required`
          : `${path || where} ${issue.message ?? 'is invalid'}`;
    return new ApiError(400, 'COULD_NOT_VALIDATE', `invalid ${where}: ${reason}`, {
      field: field || where,
      reason,
    });
  }
  if (isInvalidText(err))
    return new ApiError(
      400,
      'INVALID_CHARACTER',
      'text with a NUL character or invalid UTF-8 is not accepted',
    );
  if (isStoreUnavailable(err))
    return new ApiError(503, 'SERVICE_UNAVAILABLE', 'the database is unavailable; try again shortly');
  // A create that lost a race past its service's own check (services map their duplicates to their
  // own 409 first; this is the net under all of them).
  if (isUniqueViolation(err))
    return new ApiError(409, 'CONFLICT', 'an object with this identifier already exists');
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 413) return new ApiError(413, 'REQUEST_TOO_LARGE', 'the request body is larger than 1 MiB');
  if (status === 415) return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', e.message);
  if (e.code?.startsWith('FST_ERR_CTP') || (e as { type?: string }).type === 'entity.parse.failed') {
    return new ApiError(
      status >= 400 && status < 500 ? status : 400,
      'COULD_NOT_PARSE_BODY',
      `could not parse body: ${e.message}`,
    );
  }
  if (status >= 400 && status < 500) return new ApiError(status, e.code ?? 'BAD_REQUEST', e.message);
  return new ApiError(500, 'UNHANDLED', 'internal error');
}

/** What a renderer would send: run against a stand-in reply, nothing sent. */
export interface Rendered {
  status: number;
  statusMessage?: string;
  headers: Record<string, string>;
  body: string;
}

export function captureRender(
  render: RenderError,
  err: ApiError,
  request: FastifyRequest,
  reply?: FastifyReply,
): Rendered {
  const out: Rendered = { status: err.status, headers: {}, body: '' };
  let body: unknown = '';
  const shim = {
    raw: {
      set statusMessage(value: string) {
        out.statusMessage = value;
      },
    },
    request,
    log: reply?.log ?? request.log,
    status(code: number) {
      out.status = code;
      return shim;
    },
    code(code: number) {
      return shim.status(code);
    },
    header(name: string, value: string) {
      out.headers[name.toLowerCase()] = String(value);
      return shim;
    },
    type(value: string) {
      return shim.header('content-type', value);
    },
    send(value: unknown) {
      body = value;
      return shim;
    },
  };
  render(err, request, shim as unknown as FastifyReply);
  if (typeof body === 'string') out.body = body;
  else if (Buffer.isBuffer(body)) out.body = body.toString('utf8');
  else {
    out.body = JSON.stringify(body);
    out.headers['content-type'] ??= 'application/json; charset=utf-8';
  }
  return out;
}

/** Last resort: the error written straight to the socket, past the onSend hooks that failed it. */
function writeRaw(reply: FastifyReply, rendered: Rendered): undefined {
  reply.hijack();
  const res = reply.raw;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return undefined;
  }
  if (rendered.statusMessage) res.statusMessage = rendered.statusMessage;
  res.writeHead(rendered.status, {
    'content-type': 'application/json; charset=utf-8',
    ...rendered.headers,
    'content-length': Buffer.byteLength(rendered.body),
  });
  res.end(rendered.body);
  return undefined;
}

/** Requests whose error reply has been rendered once: a second error means sending it failed. */
const rendered = new WeakSet<FastifyRequest>();

/**
 * Installs the group's renderer for every error its routes raise. Bugs are logged, never echoed.
 * The handler itself never throws, and when the error reply it sent failed in turn (an onSend hook
 * threw), the next one is written directly: either way would otherwise end in fastify's default
 * handler and its `{"statusCode":…}` body.
 */
export function handleErrorsWith(app: FastifyInstance, render: RenderError): void {
  app.setErrorHandler((err, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status === 503) request.log.warn({ code: apiError.code }, apiError.message);
    else if (apiError.status >= 500) request.log.error({ err }, 'unhandled error');
    try {
      if (rendered.has(request)) return writeRaw(reply, captureRender(render, apiError, request, reply));
      rendered.add(request);
      const retryAfter = (apiError as ApiError & { retryAfter?: number }).retryAfter;
      if (retryAfter) void reply.header('retry-after', String(retryAfter));
      return render(apiError, request, reply);
    } catch (renderErr) {
      request.log.error({ err: renderErr }, 'error renderer failed');
      if (reply.sent) return undefined;
      return writeRaw(reply, {
        status: apiError.status,
        headers: {},
        body: JSON.stringify({ error: apiError.message, code: apiError.code }),
      });
    }
  });
}

/**
 * Which group's format an error gets when it is raised outside any group's routes (the router
 * refused the URL, a route at the root): each group claims its prefix when it registers.
 */
export class ErrorFormats {
  private readonly claimed: Array<{ prefix: string; render: RenderError }> = [];

  constructor(private readonly fallback: RenderError) {}

  claim(prefix: string, render: RenderError): void {
    this.claimed.push({ prefix, render });
    this.claimed.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  forPath(path: string): RenderError {
    const hit = this.claimed.find((c) => path === c.prefix || path.startsWith(`${c.prefix}/`));
    return hit?.render ?? this.fallback;
  }
}

export const notFoundWith = (render: RenderError) => (request: FastifyRequest, reply: FastifyReply) =>
  render(
    notFound(`no route ${request.method} ${(request.raw.url ?? request.url ?? '/').split('?')[0]}`),
    request,
    reply,
  );

/**
 * A route group at its prefix: its format for every error of its routes and for its unknown paths,
 * claimed in `errorFormats` for errors raised before routing. The routes (and their hooks: an
 * unknown path is a 404 even without a session) sit one context below.
 */
export function routeGroup<D extends object>(
  render: RenderError,
  routes: (app: FastifyInstance, deps: D) => Promise<void> | void,
) {
  return async (app: FastifyInstance, opts: D & { errorFormats?: ErrorFormats }) => {
    handleErrorsWith(app, render);
    if (app.prefix) {
      app.setNotFoundHandler(notFoundWith(render));
      opts.errorFormats?.claim(app.prefix, render);
    }
    await app.register(async (inner) => routes(inner, opts));
  };
}
