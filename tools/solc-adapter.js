#!/usr/bin/env node
// A `solc` command line over the npm `solc` package (solcjs/wasm), for machines where no native
// compiler can be downloaded. It answers the two calls py-solc-x and brownie make:
//   solc --version          -> "Version: <full version>" as native solc prints it
//   solc --standard-json    -> standard JSON in on stdin, standard JSON out on stdout
// Other flags (brownie adds --allow-paths) are accepted and ignored: imports are resolved by the
// callback below, from the working directory, the project root and their node_modules.
'use strict';
const fs = require('fs');
const path = require('path');

const projectRoot = path.resolve(__dirname, '..');
const solc = require(path.join(projectRoot, 'node_modules', 'solc'));

function findImport(importPath) {
  const roots = [process.cwd(), projectRoot];
  const candidates = path.isAbsolute(importPath) ? [importPath] : roots.flatMap((root) => [
    path.join(root, importPath),
    path.join(root, 'node_modules', importPath),
  ]);
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
  }
  return { error: `File not found: ${importPath}` };
}

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes('--standard-json')) {
  const input = fs.readFileSync(0, 'utf8');
  process.stdout.write(solc.compile(input, { import: findImport }));
} else {
  process.stderr.write('solc adapter: only --version and --standard-json are supported\n');
  process.exit(2);
}
