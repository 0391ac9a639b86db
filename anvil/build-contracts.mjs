// Compiles anvil/contracts/*.sol with the pinned solc-js and writes the
// deployable fixtures to fixtures/contracts/<Name>.json.
//   node anvil/build-contracts.mjs          rebuild the fixtures
//   node anvil/build-contracts.mjs --check  fail if a committed fixture is stale
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// Paths come from this file's location so the script works from any cwd.
const anvilDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(anvilDir);
const contractsDir = join(anvilDir, "contracts");
const outDir = join(repoRoot, "fixtures", "contracts");
// Only these get fixtures; TestToken itself is abstract.
const DEPLOYABLE = ["TestDollar", "TestEighteen", "HostileToken", "PermitDollar", "Chameleon"];
const check = process.argv.includes("--check");

let solc;
try {
  solc = createRequire(import.meta.url)("solc");
} catch (e) {
  if (e.code !== "MODULE_NOT_FOUND") throw e;
  console.error("error: solc is not installed; run `npm ci --prefix anvil --ignore-scripts` first");
  process.exit(1);
}

// Source keys are repo-relative so that the "source" field is the real path.
const sources = {};
for (const file of readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[`anvil/contracts/${file}`] = { content: readFileSync(join(contractsDir, file), "utf8") };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    // No metadata hash or CBOR trailer: the bytecode depends only on the source.
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const diagnostics = output.errors ?? [];
for (const d of diagnostics) console.error(d.formattedMessage ?? d.message);
if (diagnostics.some((d) => d.severity === "error")) {
  console.error("error: compilation failed");
  process.exit(1);
}

const fixtures = new Map();
for (const name of DEPLOYABLE) {
  const found = Object.entries(output.contracts ?? {}).filter(([, cs]) => name in cs);
  if (found.length !== 1) {
    console.error(`error: expected exactly one contract named ${name}, found ${found.length}`);
    process.exit(1);
  }
  const [source, contracts] = found[0];
  const fixture = {
    contract: name,
    source,
    compiler: solc.version(),
    abi: contracts[name].abi,
    bytecode: "0x" + contracts[name].evm.bytecode.object,
  };
  fixtures.set(join(outDir, `${name}.json`), JSON.stringify(fixture, null, 2) + "\n");
}

if (check) {
  const stale = [...fixtures].filter(([path, text]) => !existsSync(path) || readFileSync(path, "utf8") !== text);
  for (const [path] of stale) console.error(`stale: ${path.slice(repoRoot.length + 1)}`);
  if (stale.length > 0) {
    console.error("fixtures do not match anvil/contracts; rebuild with `node anvil/build-contracts.mjs`");
    process.exit(1);
  }
  console.log(`ok: ${fixtures.size} contract fixtures match anvil/contracts (solc ${solc.version()})`);
} else {
  mkdirSync(outDir, { recursive: true });
  for (const [path, text] of fixtures) {
    writeFileSync(path, text);
    console.log(`wrote ${path.slice(repoRoot.length + 1)}`);
  }
}
