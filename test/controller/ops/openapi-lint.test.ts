/**
 * /openapi.json through an OpenAPI 3.0 validator (@apidevtools/swagger-parser: the document against
 * the OpenAPI 3.0 JSON Schema, $refs resolved), and every schema in it compiled by ajv.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(60);

let c: TestController;
let doc: any;

test.before(async () => {
  c = await startTestController();
  doc = (await c.call('GET', '/openapi.json')).body;
});

test.after(async () => c?.destroy());

test('swagger-parser validates the document', async () => {
  // A dev dependency (package.json), imported by name at run time.
  const name = '@apidevtools/swagger-parser';
  const SwaggerParser = (await import(name)).default;
  // Its error carries a large `details` array uvu cannot print: report the message only.
  const api = await SwaggerParser.validate(structuredClone(doc)).catch((e: Error) => {
    throw new Error(e.message.slice(0, 4000));
  });
  assert.is(api.openapi, '3.0.3');
});

test('every request and response schema compiles (OpenAPI 3.0 dialect: nullable, no type arrays)', () => {
  const ajv = new Ajv({ strict: false });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  ajv.addFormat('uint64', true);
  ajv.addFormat('binary', true);
  ajv.addSchema({ $id: 'doc', components: doc.components });
  let n = 0;
  const text = JSON.stringify(doc);
  assert.not.match(text, /"type":\[/, 'type arrays are not OpenAPI 3.0');
  assert.not.match(text, /"const":/, 'const is not OpenAPI 3.0');
  const fix = (s: unknown) => JSON.parse(JSON.stringify(s).replaceAll('"#/components/', '"doc#/components/'));
  for (const item of Object.values<any>(doc.paths))
    for (const op of Object.values<any>(item)) {
      const media = [
        ...Object.values<any>(op.requestBody?.content ?? {}),
        ...Object.values<any>(op.responses).flatMap((r) => Object.values<any>(r.content ?? {})),
      ];
      for (const m of media) {
        ajv.compile(fix(m.schema));
        n++;
      }
      for (const p of op.parameters ?? []) {
        ajv.compile(fix(p.schema));
        n++;
      }
    }
  assert.ok(n > 200, `${n} schemas compiled`);
});

test.run();
