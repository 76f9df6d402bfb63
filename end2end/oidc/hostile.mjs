// A hostile OpenID provider for Parley's attack tests: it answers the authorization request at
// once (no login) and its token endpoint hands out an ID token broken in the way `--mode`
// says, to show that Parley refuses each:
//   good     a valid RS256 token (the harness itself works)
//   aud      issued to another client          expired  `exp` an hour ago
//   none     `alg: none`, unsigned             hs256    HMAC-signed with the client secret
//   nonce    another nonce                     iss      another issuer
//   kid      signed with a key not in the JWKS
//
//   node oidc/hostile.mjs --port 3460 --mode aud
import { parseArgs } from 'node:util';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';

const { values } = parseArgs({ options: { port: { type: 'string' }, mode: { type: 'string', default: 'good' } } });
const mode = values.mode;
const issuer = `http://127.0.0.1:${values.port}`;
const { privateKey, publicKey } = await generateKeyPair('RS256');
const { privateKey: strayKey } = await generateKeyPair('RS256');
const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', use: 'sig', alg: 'RS256' };
const codes = new Map();

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function idToken({ nonce, clientId, secret }) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: mode === 'iss' ? 'http://127.0.0.1:1' : issuer,
    sub: `hostile-${mode}`,
    aud: mode === 'aud' ? 'someone-else' : clientId,
    iat: now,
    exp: mode === 'expired' ? now - 3600 : now + 600,
    nonce: mode === 'nonce' ? 'another-nonce' : nonce,
    email: `${mode}@hostile.test`,
    email_verified: true,
  };
  if (mode === 'none') return new UnsecuredJWT(claims).encode();
  if (mode === 'hs256') {
    return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
  }
  const key = mode === 'kid' ? strayKey : privateKey;
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: mode === 'kid' ? 'k2' : 'k1' }).sign(key);
}

createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/.well-known/openid-configuration') {
    return json(res, 200, {
      issuer,
      authorization_endpoint: `${issuer}/auth`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
  }
  if (url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
  if (url.pathname === '/auth') {
    const code = randomBytes(16).toString('hex');
    codes.set(code, { nonce: url.searchParams.get('nonce'), clientId: url.searchParams.get('client_id') });
    const back = new URL(url.searchParams.get('redirect_uri'));
    back.searchParams.set('code', code);
    back.searchParams.set('state', url.searchParams.get('state'));
    res.writeHead(303, { location: back.toString() });
    return res.end();
  }
  if (url.pathname === '/token' && req.method === 'POST') {
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    const found = codes.get(form.get('code'));
    codes.delete(form.get('code'));
    if (!found) return json(res, 400, { error: 'invalid_grant' });
    const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
    const secret = decodeURIComponent(basic.split(':').slice(1).join(':'));
    const token = await idToken({ ...found, secret });
    return json(res, 200, { access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 600, id_token: token });
  }
  res.writeHead(404);
  res.end();
}).listen(Number(values.port), '127.0.0.1', () => console.log(`listening ${issuer}`));
