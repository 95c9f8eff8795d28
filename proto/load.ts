import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ at the package root, whether running from dist/ or from the source tree. */
export const protoRoot = fileURLToPath(
  new URL(import.meta.url.includes('/dist/') ? '../../proto/' : './', import.meta.url),
);

const options: protoLoader.Options = {
  includeDirs: [protoRoot],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export function loadDefinition(files: string[]): protoLoader.PackageDefinition {
  return protoLoader.loadSync(files, options);
}

export function loadProto(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(loadDefinition([file]));
}

type Ctor = grpc.ServiceClientConstructor;

/** The two vmwarden services (and the standard health service), loaded once. */
export function vmwardenServices(): {
  Agent: Ctor;
  Controller: Ctor;
  Health: Ctor;
  definition: protoLoader.PackageDefinition;
} {
  const files = [
    'vmwarden/agent/v1/agent.proto',
    'vmwarden/controller/v1/controller.proto',
    'grpc/health/v1/health.proto',
  ];
  const definition = loadDefinition(files);
  const root = grpc.loadPackageDefinition(definition) as any;
  return {
    Agent: root.vmwarden.agent.v1.Agent,
    Controller: root.vmwarden.controller.v1.Controller,
    Health: root.grpc.health.v1.Health,
    definition,
  };
}
