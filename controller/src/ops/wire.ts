/** Response schemas of the operations endpoints (documentation for /openapi.json). */
import { mediaResponse } from './openapi.js';

const nullableString = { type: ['string', 'null'] };

const auditRecord = {
  type: 'object',
  required: ['id', 'time', 'action', 'outcome'],
  properties: {
    id: { type: 'integer' },
    time: { type: 'string', format: 'date-time' },
    actorId: nullableString,
    actorName: nullableString,
    sourceAddress: nullableString,
    action: { type: 'string' },
    object: nullableString,
    outcome: { type: 'string', enum: ['attempt', 'success', 'failure'] },
    status: { type: ['integer', 'null'] },
    detail: nullableString,
    requestId: nullableString,
  },
};

const readiness = {
  type: 'object',
  required: ['status', 'checks'],
  properties: {
    status: { type: 'string', enum: ['ready', 'not ready'] },
    checks: { type: 'object', properties: { store: { type: 'string' } } },
  },
};

export const responses = {
  healthz: {
    200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } },
  },
  // 503 (the store does not answer) has the same body, not an error format.
  readyz: { 200: readiness, 503: readiness },
  metrics: {
    200: mediaResponse('text/plain; version=0.0.4', {
      type: 'string',
      description: 'Prometheus text format',
    }),
  },
  openapi: {
    200: {
      type: 'object',
      required: ['openapi', 'info', 'paths'],
      properties: { openapi: { type: 'string' }, info: { type: 'object' }, paths: { type: 'object' } },
    },
  },
  audit: {
    200: {
      type: 'object',
      required: ['entries', 'total'],
      properties: { entries: { type: 'array', items: auditRecord }, total: { type: 'integer' } },
    },
  },
};
