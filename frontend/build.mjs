// Builds the dashboard into frontend/dist: src/main.js bundled with its npm dependencies (viem) by esbuild,
// its CSS, and index.html. Idempotent: the hash of every input is kept in dist/.stamp and a build whose
// inputs did not change is skipped, so `tools/setup.sh` and `efedllm dashboard` can run it every time.
//   node frontend/build.mjs            build if stale
//   node frontend/build.mjs --force    build anyway
//   node frontend/build.mjs --check    exit 1 if stale, build nothing
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const dist = join(here, "dist");
const stampFile = join(dist, ".stamp");

function files(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

function inputsHash() {
  const hash = createHash("sha256");
  const inputs = [join(here, "build.mjs"), join(here, "index.html"), join(root, "package-lock.json"),
    join(root, "efedllm", "chain", "schema.json"), ...files(join(here, "src"))]; // schema.js bundles schema.json
  for (const path of inputs) {
    hash.update(relative(root, path) + "\0");
    hash.update(readFileSync(path));
  }
  return hash.digest("hex").slice(0, 16);
}

const args = new Set(process.argv.slice(2));
const want = inputsHash();
const have = existsSync(stampFile) ? readFileSync(stampFile, "utf8").trim() : "";
const fresh = have === want && existsSync(join(dist, "app.js")) && existsSync(join(dist, "index.html"));
if (args.has("--check")) process.exit(fresh ? 0 : 1);
if (fresh && !args.has("--force")) {
  console.log(`dashboard bundle up to date (${relative(process.cwd(), dist) || "."})`);
  process.exit(0);
}

const esbuild = await import("esbuild");
const started = Date.now();
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const result = await esbuild.build({
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: dist,
  metafile: true,
  logLevel: "warning",
}).catch(() => process.exit(1)); // esbuild has printed the errors
copyFileSync(join(here, "index.html"), join(dist, "index.html"));
writeFileSync(stampFile, want + "\n");
const sizes = Object.entries(result.metafile.outputs)
  .filter(([name]) => !name.endsWith(".map"))
  .map(([name, out]) => `${name.split("/").pop()} ${(out.bytes / 1024).toFixed(0)} KiB`);
console.log(`built dashboard bundle in ${Date.now() - started} ms: ${sizes.join(", ")}`);
