/**
 * Validates responses against the machine-readable contracts in test/contracts (Swagger 2.0 and
 * OpenAPI 3: the OpenZiti edge management and the access API's documents, kept in the repo so a fresh
 * clone tests alone), so wire compatibility is checked by the contract itself, not by our reading of it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

const contractsDir = fileURLToPath(new URL('../../../test/contracts/', import.meta.url));

const cache = new Map<string, ValidateFunction>();

function load(file: string): any {
  return swaggerNullable(parse(readFileSync(contractsDir + file, 'utf8')));
}

/** Swagger 2.0 has no `null` type; `x-nullable: true` (go-swagger) allows null, as OpenAPI 3 `nullable` does. */
function swaggerNullable(node: any): any {
  if (Array.isArray(node)) return node.map(swaggerNullable);
  if (!node || typeof node !== 'object') return node;
  const out: any = {};
  for (const [k, v] of Object.entries(node)) out[k] = swaggerNullable(v);
  if (out['x-nullable'] === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    else if (!out.type) return { anyOf: [{ type: 'null' }, out] };
  }
  return out;
}

/** A validator for one named schema (Swagger `definitions` or OpenAPI `components.schemas`). */
export function contractValidator(file: string, name: string): ValidateFunction {
  const key = `${file}#${name}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const doc = load(file);
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  for (const f of ['int64', 'int32', 'double', 'float']) ajv.addFormat(f, true);
  // The Swagger contract's own examples use relative links (`href: ./current-api-session`), so its
  // `format: uri` means a URI reference there.
  ajv.addFormat('uri', (v: string) => /^(?:[a-z][a-z0-9+.-]*:|\.{0,2}\/)/i.test(v));
  const root = doc.swagger ? { definitions: doc.definitions } : { components: doc.components };
  const pointer = doc.swagger ? `#/definitions/${name}` : `#/components/schemas/${name}`;
  const validate = ajv.compile({ ...root, $ref: pointer });
  cache.set(key, validate);
  return validate;
}

/** Throws with every violation listed when the value does not match the named contract schema. */
export function assertContract(file: string, name: string, value: unknown): void {
  const validate = contractValidator(file, name);
  if (!validate(value)) {
    throw new Error(`response does not match ${file} ${name}: ${JSON.stringify(validate.errors, null, 1)}`);
  }
}

export const ZITI = 'current-api-session.swagger.yaml';
export const ACCESS = 'access-api.openapi.yaml';
