import type { TestController } from '../../helpers/controller.js';

export const BASE = '/ssh_key_authenticator';

/** A COmanage SshKeys request for one key. */
export function sshKeyRequest(personId: string, authenticatorId: string, fields: Record<string, unknown>) {
  return {
    RequestType: 'SshKeys',
    Version: '1.0',
    SshKeys: [
      {
        Version: '1.0',
        Person: { Type: 'CO', Id: personId },
        SshKeyAuthenticatorId: authenticatorId,
        ...fields,
      },
    ],
  };
}

/** The person's SshKeyAuthenticatorId, as a client discovers it. */
export async function authenticatorIdOf(c: TestController, token: string, personId: string): Promise<string> {
  const r = await c.call('GET', `${BASE}/authenticators.json?copersonid=${personId}`, { token });
  if (r.status !== 200) throw new Error(`authenticator of ${personId}: ${r.status} ${r.text}`);
  return r.body.SshKeyAuthenticators[0].Id;
}

export const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
