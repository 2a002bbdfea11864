// Mints a wsnotify signed token as an app's backend does, with Node's own
// crypto and no dependency; docs/keys-and-tokens.md shows wsnotifyToken as the Node
// snippet, and a test checks that the two stay the same. By hand:
//
//   WSNOTIFY_TOKEN_SECRET=<the first secret> \
//   WSNOTIFY_TOKEN_AUDIENCE=<aud> WSNOTIFY_TOKEN_ISSUER=<iss> \
//   node infra/node/mint-token.js <owner> [ttl seconds]
//
// The audience and issuer are the service's (--token-audience and
// --token-issuer, or the TokenAudience and TokenIssuer template parameters);
// left unset, the token names neither.

const { createHmac } = require('crypto');

// A token for one owner, valid ttlSeconds (HS256; secret: the service's
// first), naming the service's audience and issuer when given.
function wsnotifyToken(ownerId, secret, ttlSeconds = 600, { audience, issuer } = {}) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: ownerId, iat: now, exp: now + ttlSeconds };
  if (audience) claims.aud = audience;
  if (issuer) claims.iss = issuer;
  const body = part({ alg: 'HS256', typ: 'JWT' }) + '.' + part(claims);
  return body + '.' + createHmac('sha256', secret).update(body).digest('base64url');
}

module.exports = { wsnotifyToken };

if (require.main === module) {
  const [owner, ttl] = process.argv.slice(2);
  const env = process.env;
  if (!owner || !env.WSNOTIFY_TOKEN_SECRET) {
    console.error('usage: WSNOTIFY_TOKEN_SECRET=<secret> [WSNOTIFY_TOKEN_AUDIENCE=<aud>] [WSNOTIFY_TOKEN_ISSUER=<iss>] node mint-token.js <owner> [ttl seconds]');
    process.exit(2);
  }
  console.log(wsnotifyToken(owner, env.WSNOTIFY_TOKEN_SECRET, ttl ? Number(ttl) : undefined,
    { audience: env.WSNOTIFY_TOKEN_AUDIENCE, issuer: env.WSNOTIFY_TOKEN_ISSUER }));
}
