export const BASE = '/ssh_key_authenticator';
/** A COmanage SshKeys request for one key. */
export function sshKeyRequest(personId, authenticatorId, fields) {
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
export async function authenticatorIdOf(c, token, personId) {
    const r = await c.call('GET', `${BASE}/authenticators.json?copersonid=${personId}`, { token });
    if (r.status !== 200)
        throw new Error(`authenticator of ${personId}: ${r.status} ${r.text}`);
    return r.body.SshKeyAuthenticators[0].Id;
}
export const basic = (user, password) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
//# sourceMappingURL=api-helpers.js.map