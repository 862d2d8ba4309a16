// Compiles every src/*.sol with solc-js (standard JSON) and writes build/<Contract>.json.
// Output is deterministic: fixed compiler settings, metadata hash "none", sorted inputs,
// fixed key order and a trailing newline, so a rebuild is byte-identical.
// Usage: node scripts/build.mjs [outDir]   (default: build/ beside this script's parent)
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = path.join(root, "src");
const outDir = path.resolve(process.argv[2] ?? path.join(root, "build"));

const settings = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none", appendCBOR: false },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const sourceFiles = fs
  .readdirSync(srcDir)
  .filter((f) => f.endsWith(".sol"))
  .sort();

const sources = {};
for (const file of sourceFiles) {
  sources[`src/${file}`] = { content: fs.readFileSync(path.join(srcDir, file), "utf8") };
}

function findImports(importPath) {
  const candidates = [path.join(root, "node_modules", importPath), path.join(root, importPath)];
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: `import not found: ${importPath}` };
}

const input = { language: "Solidity", sources, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

const errors = (output.errors ?? []).filter((e) => e.severity === "error");
for (const e of output.errors ?? []) {
  process.stderr.write(`${e.formattedMessage}\n`);
}
if (errors.length > 0) {
  process.exit(1);
}

fs.mkdirSync(outDir, { recursive: true });
// A contract removed from src/ must not leave a stale artifact behind.
for (const stale of fs.readdirSync(outDir).filter((f) => f.endsWith(".json"))) {
  fs.rmSync(path.join(outDir, stale));
}
const version = solc.version();
let written = 0;
for (const file of sourceFiles) {
  const contracts = output.contracts[`src/${file}`] ?? {};
  for (const name of Object.keys(contracts).sort()) {
    const c = contracts[name];
    // Interfaces have no bytecode and nothing to deploy.
    if (c.evm.bytecode.object === "") continue;
    const artifact = {
      contractName: name,
      abi: c.abi,
      bytecode: `0x${c.evm.bytecode.object}`,
      deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      compiler: { version, settings },
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), `${JSON.stringify(artifact, null, 2)}\n`);
    written += 1;
  }
}
process.stdout.write(`wrote ${written} artifacts to ${outDir} (solc ${version})\n`);
