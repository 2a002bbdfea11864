// Validates an OpenAPI document with @readme/openapi-parser, which checks
// it against the OpenAPI 3.0 and 3.1 specifications' schemas and the rules
// they state in words (unique operationIds, resolvable $refs, declared path
// parameters), and prints every error and warning as one JSON line:
//
//   node infra/node/openapi-check.js docs/openapi.yaml
//
// It exits 1 if the document is invalid (or cannot be read), 0 otherwise.
// infra/openapi's tests run it on docs/openapi.yaml, and on broken copies to
// see it fail.

const { validate } = require('@readme/openapi-parser');

async function main(path) {
  const result = await validate(path);
  for (const e of result.errors || []) {
    console.log(JSON.stringify({ severity: 'error', message: e.message }));
  }
  for (const w of result.warnings || []) {
    console.log(JSON.stringify({ severity: 'warning', message: w.message }));
  }
  if (!result.valid) {
    console.error(`${path}: ${(result.errors || []).length} error(s)`);
    return 1;
  }
  return 0;
}

if (process.argv.length !== 3) {
  console.error('usage: node openapi-check.js DOCUMENT');
  process.exit(2);
}
main(process.argv[2]).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err.stack || String(err));
    process.exit(1);
  },
);
