// `npm run build`: generates the example's TypeScript-typed code from the
// repository's proto/ with Debian's protoc and protoc-gen-es (target js+dts)
// into gen/, compiles src/ with tsc into dist/, and copies gen/ to dist/gen/.
//
//   node scripts/build.mjs            # gen + tsc + copy
//   node scripts/build.mjs --gen-only # gen/ only
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROTO = path.resolve(WEB, '..', '..', 'proto');
const GEN = path.join(WEB, 'gen');
const DIST = path.join(WEB, 'dist');

// The example service and everything it imports that is not a well-known
// type (those come from @bufbuild/protobuf/wkt; protoc finds their .proto
// files in /usr/include, Debian's libprotobuf-dev).
const FILES = [
  'streaming/v1/streaming.proto',
  'gravity/v1/options.proto',
  'google/api/annotations.proto',
  'google/api/http.proto',
  'google/rpc/status.proto',
];

function run(file, args) {
  try {
    execFileSync(file, args, { cwd: WEB, stdio: 'inherit' });
  } catch (e) {
    console.error(`build: ${path.basename(file)} failed (${e.status ?? e.message})`);
    process.exit(1);
  }
}

const protoc = process.env.PROTOC ?? 'protoc';
const includes = [`-I${PROTO}`];
for (const dir of ['/usr/include', '/usr/local/include']) {
  if (existsSync(path.join(dir, 'google/protobuf/descriptor.proto'))) includes.push(`-I${dir}`);
}

rmSync(GEN, { recursive: true, force: true });
mkdirSync(GEN, { recursive: true });
run(protoc, [
  ...includes,
  `--plugin=protoc-gen-es=${path.join(WEB, 'node_modules/.bin/protoc-gen-es')}`,
  `--es_out=${GEN}`,
  '--es_opt=target=js+dts,import_extension=js',
  ...FILES,
]);
if (process.argv.includes('--gen-only')) process.exit(0);

rmSync(DIST, { recursive: true, force: true });
run(process.execPath, [path.join(WEB, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
cpSync(GEN, path.join(DIST, 'gen'), { recursive: true });
