import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoRoot } from '../../proto/load.js';
import { HEALTH_SERVICE } from './health.js';

const reflectionProtos = join(
  dirname(createRequire(import.meta.url).resolve('@grpc/reflection')),
  '..',
  'proto',
);
const REFLECTION_FILES = ['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'];
const REFLECTION_SERVICES = [
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
];

/**
 * Server reflection (v1 and v1alpha) describing exactly what this server serves: `services` (their
 * fully qualified names, from `files` under proto/), health and reflection itself. Nothing else is
 * loaded, so a client can neither list nor resolve a service another program serves.
 */
export function addReflection(server: grpc.Server, files: string[], services: string[]): void {
  const definition = protoLoader.loadSync([...files, 'grpc/health/v1/health.proto', ...REFLECTION_FILES], {
    includeDirs: [protoRoot, reflectionProtos],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  new ReflectionService(definition, {
    services: [...services, HEALTH_SERVICE, ...REFLECTION_SERVICES],
  }).addToServer(server);
}
