// A real OpenID provider for Parley's tests: panva's certified `oidc-provider`, on a loopback
// port, with static clients (PKCE required) and its development login form, where any login
// signs in: the login is the subject; its email is the login when it holds an `@`, else
// `<login>@example.test`; a login starting `unverified` has `email_verified: false`.
//
//   node oidc/provider.mjs --port 3450 --clients '[{"client_id":"parley","client_secret":"s",
//        "redirect_uris":["http://127.0.0.1:3400/auth/callback/corp"]}]' [--key-seed a]
//
// `--key-seed` names the signing key (its `kid`): restarting with another seed is a key
// rotation. It prints `listening <issuer>` once it serves.
import { generateKeyPairSync, createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    clients: { type: 'string' },
    'key-seed': { type: 'string', default: 'one' },
  },
});
const port = Number(values.port);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `key-${values['key-seed']}`, use: 'sig', alg: 'RS256' };
const clients = JSON.parse(values.clients).map((c) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...c,
}));

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [jwk] },
  cookies: { keys: [createHash('sha256').update(`cookies ${port}`).digest('hex')] },
  pkce: { required: () => true, methods: ['S256'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const email = id.includes('@') ? id : `${id}@example.test`;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email, email_verified: !id.startsWith('unverified'), name: id };
      },
    };
  },
});
provider.proxy = false;
provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
