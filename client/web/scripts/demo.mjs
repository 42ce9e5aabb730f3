// `npm run demo` (after `npm run build`): the demo page as one HTML file.
// gravity-bridge serves a single file at / (--index_html), so the page's
// script, examples/demo/app.js, is bundled with @gravity/client by esbuild and
// inlined into examples/demo/index.html in place of its
// <script type="module" src="app.js"></script>. Writes dist/demo/index.html
// (or the path given as the first argument) and prints its path.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEMO = path.resolve(WEB, '..', '..', 'examples', 'demo');
const out = path.resolve(process.argv[2] ?? path.join(WEB, 'dist', 'demo', 'index.html'));
const TAG = '<script type="module" src="app.js"></script>';

const result = await esbuild.build({
  entryPoints: [path.join(DEMO, 'app.js')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  write: false,
  // The page imports the package by its name, as a user's page would.
  alias: { '@gravity/client': WEB },
  logLevel: 'warning',
});
const script = result.outputFiles[0].text.replace(/<\/script/gi, '<\\/script');
const template = readFileSync(path.join(DEMO, 'index.html'), 'utf8');
if (!template.includes(TAG)) throw new Error(`examples/demo/index.html has no ${TAG}`);
const html = template.replace(TAG, () => `<script type="module">\n${script}</script>`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, html);
console.log(out);
