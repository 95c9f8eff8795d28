import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPrivateFile, writePrivateFile } from '../../controller/src/platform/private-file.js';
const files = (dir) => ({
    key: join(dir, 'agent.key'),
    cert: join(dir, 'agent.crt'),
    ca: join(dir, 'ca.crt'),
    enrollment: join(dir, 'enrollment.json'),
});
export function isEnrolled(dataDir) {
    const f = files(dataDir);
    return existsSync(f.enrollment) && existsSync(f.key) && existsSync(f.cert) && existsSync(f.ca);
}
/** Loads the credentials; the private key is refused when group/others can read it. */
export function loadCredentials(dataDir) {
    const f = files(dataDir);
    return {
        enrollment: JSON.parse(readFileSync(f.enrollment, 'utf8')),
        key: readPrivateFile(f.key).toString(),
        cert: readFileSync(f.cert, 'utf8'),
        ca: readFileSync(f.ca, 'utf8'),
    };
}
export function saveCredentials(dataDir, c) {
    const f = files(dataDir);
    writePrivateFile(f.key, c.key);
    writeFileSync(f.cert, c.cert, { mode: 0o644 });
    writeFileSync(f.ca, c.ca, { mode: 0o644 });
    writeFileSync(f.enrollment, `${JSON.stringify(c.enrollment, null, 2)}\n`, { mode: 0o644 });
}
//# sourceMappingURL=credentials.js.map