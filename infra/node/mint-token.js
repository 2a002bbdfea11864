// Mints a wsnotify signed token as an app's backend does, with Node's own
// crypto and no dependency; docs/keys-and-tokens.md shows wsnotifyToken as the Node
// snippet, and a test checks that the two stay the same. By hand:
//
//   WSNOTIFY_TOKEN_SECRET=<the first secret> node infra/node/mint-token.js <owner> [ttl seconds]

const { createHmac } = require('crypto');

// A token for one owner, valid ttlSeconds (HS256; secret: the service's first).
function wsnotifyToken(ownerId, secret, ttlSeconds = 600) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = part({ alg: 'HS256', typ: 'JWT' }) + '.' + part({ sub: ownerId, iat: now, exp: now + ttlSeconds });
  return body + '.' + createHmac('sha256', secret).update(body).digest('base64url');
}

module.exports = { wsnotifyToken };

if (require.main === module) {
  const [owner, ttl] = process.argv.slice(2);
  if (!owner || !process.env.WSNOTIFY_TOKEN_SECRET) {
    console.error('usage: WSNOTIFY_TOKEN_SECRET=<secret> node mint-token.js <owner> [ttl seconds]');
    process.exit(2);
  }
  console.log(wsnotifyToken(owner, process.env.WSNOTIFY_TOKEN_SECRET, ttl ? Number(ttl) : undefined));
}
