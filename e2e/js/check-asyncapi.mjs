// Validates an AsyncAPI document with the AsyncAPI project's own parser
// (@asyncapi/parser). Usage: node check-asyncapi.mjs FILE. Prints every
// diagnostic; exits 1 on any error or warning, 0 when there are none.
import { readFile } from 'node:fs/promises';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const file = process.argv[2];
const text = await readFile(file, 'utf8');
const { document, diagnostics } = await new Parser().parse(text);
const names = { 0: 'error', 1: 'warning', 2: 'information', 3: 'hint' };
let bad = 0;
for (const d of diagnostics) {
  const sev = names[d.severity] ?? d.severity;
  if (d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning) bad++;
  console.log(`${sev}: ${d.code}: ${d.message} at ${(d.path || []).join('.')}`);
}
if (!document) {
  console.log('the document did not parse');
  process.exit(1);
}
console.log(`${document.operations().length} operations, ${document.messages().length} messages, ${bad} errors and warnings`);
process.exit(bad ? 1 : 0);
