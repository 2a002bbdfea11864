// Parses an AsyncAPI document with @asyncapi/parser, the ecosystem's
// reference parser, and prints every diagnostic it reports as one JSON line:
//
//   node infra/node/asyncapi-check.js docs/asyncapi.yaml
//
// It exits 1 if any diagnostic has error severity (or the document cannot be
// read), 0 otherwise: warnings and hints are printed but pass. infra/asyncapi's
// tests run it on docs/asyncapi.yaml, and on a broken copy to see it fail.

const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

async function main(path) {
  const text = fs.readFileSync(path, 'utf8');
  const { document, diagnostics } = await new Parser().parse(text, { source: path });
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors++;
    console.log(JSON.stringify({
      severity: DiagnosticSeverity[d.severity],
      code: d.code,
      message: d.message,
      path: (d.path || []).join('.'),
      line: d.range ? d.range.start.line + 1 : 0,
    }));
  }
  if (errors > 0 || document === undefined) {
    console.error(`${path}: ${errors} error(s)`);
    return 1;
  }
  return 0;
}

if (process.argv.length !== 3) {
  console.error('usage: node asyncapi-check.js DOCUMENT');
  process.exit(2);
}
main(process.argv[2]).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err.stack || String(err));
    process.exit(1);
  },
);
