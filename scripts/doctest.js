'use strict';
// Doc tests: every fenced `js`, `mjs`, `cjs` and `ts` block of README.md and
// docs/*.md is run or type-checked against the built package (dist/).
//
//   node scripts/doctest.js [--list] [--filter TEXT] [--jobs N] [--verbose]
//
// - JS blocks run with the current node, each in its own process, in a fresh
//   directory under the system temp directory whose node_modules resolves
//   `resource-guard` to this package (and the optional peers to this
//   checkout's copies). A block is an ES module when it uses `import`/`export`
//   (or the fence is `mjs`), CommonJS otherwise; a CommonJS block that uses
//   `await` runs inside an async function. It fails on a crash, a non-zero exit
//   or when it runs longer than the timeout (30 s): a block must stop itself
//   (close its servers, clear its timers).
// - TS blocks are type-checked with `tsc --strict --noEmit` against the built
//   declarations (dist/*.d.ts), once as CommonJS and once as ES modules
//   (module: nodenext), each block a module of its own.
// - Blocks not meant to run use another fence: `text`, `sh`, `json`, `yaml`.
//
// Exit status 0 when every block passed; the last line gives the counts.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const TIMEOUT_MS = 30_000;
const RUN_LANGS = new Set(['js', 'mjs', 'cjs', 'javascript']);
const TYPE_LANGS = new Set(['ts', 'typescript']);
// Packages a block may import besides resource-guard (devDependencies here).
const PEERS = ['prom-client', '@opentelemetry/api', '@opentelemetry/sdk-metrics', 'fastify', '@fastify/under-pressure', 'express', 'koa'];

function docFiles() {
  const files = [path.join(ROOT, 'README.md')];
  const docs = path.join(ROOT, 'docs');
  if (fs.existsSync(docs)) {
    for (const f of fs.readdirSync(docs).sort()) if (f.endsWith('.md')) files.push(path.join(docs, f));
  }
  return files;
}

/** Fenced code blocks of a Markdown file: { file, line, lang, code }. */
function extract(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const blocks = [];
  let open = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (open === null) {
      if (fence) open = { marker: fence[2], indent: fence[1].length, lang: fence[3].toLowerCase(), line: i + 1, body: [] };
    } else if (fence && fence[2][0] === open.marker[0] && fence[2].length >= open.marker.length && fence[3] === '') {
      blocks.push({ file: path.relative(ROOT, file), line: open.line, lang: open.lang, code: open.body.join('\n') + '\n' });
      open = null;
    } else {
      open.body.push(line.slice(Math.min(open.indent, /^\s*/.exec(line)[0].length)));
    }
  }
  if (open !== null) throw new Error(`${path.relative(ROOT, file)}:${open.line}: code fence never closed`);
  return blocks;
}

function isEsm(block) {
  if (block.lang === 'mjs') return true;
  if (block.lang === 'cjs') return false;
  return /^\s*(import\s[^(]|import\{|export\s)/m.test(block.code);
}

function linkModules(dir) {
  const nm = path.join(dir, 'node_modules');
  fs.mkdirSync(path.join(nm, '@opentelemetry'), { recursive: true });
  fs.mkdirSync(path.join(nm, '@fastify'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(nm, 'resource-guard'), 'junction');
  for (const peer of PEERS) {
    const from = path.join(ROOT, 'node_modules', peer);
    if (fs.existsSync(from)) fs.symlinkSync(from, path.join(nm, peer), 'junction');
  }
}

function runJs(block, index, workRoot) {
  const dir = path.join(workRoot, `js-${index}`);
  fs.mkdirSync(dir);
  linkModules(dir);
  const esm = isEsm(block);
  let code = block.code;
  if (!esm && /\bawait\b/.test(code)) {
    code = `(async () => {\n${code}\n})().catch((err) => {\n  console.error(err);\n  process.exit(1);\n});\n`;
  }
  const file = path.join(dir, esm ? 'block.mjs' : 'block.cjs');
  fs.writeFileSync(file, code);
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ok = !timedOut && code === 0;
      const why = timedOut ? `did not stop within ${TIMEOUT_MS / 1000} s` : signal ? `killed by ${signal}` : `exit status ${code}`;
      resolve({ ok, why, out, ms: Date.now() - started });
    });
  });
}

/** Type-checks every TS block, as CommonJS and as ES modules. Returns failures by block index. */
function typeCheck(blocks, workRoot) {
  const failures = new Map();
  if (blocks.length === 0) return failures;
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const mode of ['commonjs', 'module']) {
    const dir = path.join(workRoot, `ts-${mode}`);
    fs.mkdirSync(dir);
    linkModules(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `doctest-${mode}`, private: true, type: mode }));
    const files = blocks.map(({ block, index }) => {
      const name = `block-${index}.ts`;
      // `export {}` makes every block a module of its own (its names do not clash).
      fs.writeFileSync(path.join(dir, name), `${block.code}\nexport {};\n`);
      return name;
    });
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022', 'ESNext.Disposable'],
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules', '@types')],
        },
        files,
      }),
    );
    const r = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    if (r.status !== 0) {
      let attributed = false;
      for (const m of output.matchAll(/block-(\d+)\.ts\((\d+),(\d+)\): (error [^\n]*)/g)) {
        const index = Number(m[1]);
        const list = failures.get(index) ?? [];
        list.push(`${mode}: line ${m[2]}: ${m[4]}`);
        failures.set(index, list);
        attributed = true;
      }
      if (!attributed) throw new Error(`tsc failed (${mode}) without naming a block:\n${output}`);
    }
  }
  return failures;
}

async function main() {
  const args = process.argv.slice(2);
  const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1] : null;
  const verbose = args.includes('--verbose');
  const jobs = args.includes('--jobs') ? Number(args[args.indexOf('--jobs') + 1]) : Math.min(2, os.availableParallelism?.() ?? 2);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    console.error('doctest: dist/ is not built; run npm run build:ts first');
    return 1;
  }
  const all = docFiles().flatMap(extract);
  const blocks = all
    .map((block, index) => ({ block, index }))
    .filter(({ block }) => RUN_LANGS.has(block.lang) || TYPE_LANGS.has(block.lang))
    .filter(({ block }) => filter === null || `${block.file}:${block.line}`.includes(filter));
  if (args.includes('--list')) {
    for (const { block } of blocks) console.log(`${block.file}:${block.line} ${block.lang}`);
    return 0;
  }
  const workRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'resource-guard-doctest-'));
  let failed = 0;
  try {
    const js = blocks.filter(({ block }) => RUN_LANGS.has(block.lang));
    const ts = blocks.filter(({ block }) => TYPE_LANGS.has(block.lang));
    const tsFailures = typeCheck(ts, workRoot);
    for (const { block, index } of ts) {
      const errs = tsFailures.get(index);
      if (errs) {
        failed++;
        console.log(`FAIL ${block.file}:${block.line} (ts)\n  ${errs.join('\n  ')}`);
      } else {
        console.log(`ok   ${block.file}:${block.line} (ts, type-checked as CommonJS and ES module)`);
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < js.length) {
        const { block, index } = js[next++];
        const r = await runJs(block, index, workRoot);
        const where = `${block.file}:${block.line} (${isEsm(block) ? 'esm' : 'cjs'}, ${r.ms} ms)`;
        if (r.ok) {
          console.log(`ok   ${where}`);
          if (verbose && r.out) console.log(r.out.replace(/^/gm, '  | '));
        } else {
          failed++;
          console.log(`FAIL ${where}: ${r.why}\n${r.out.replace(/^/gm, '  | ')}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
    console.log(`\ndoctest: ${blocks.length - failed} of ${blocks.length} blocks passed (${js.length} run with node ${process.version}, ${ts.length} type-checked)`);
  } finally {
    fs.rmSync(workRoot, { recursive: true, force: true });
  }
  return failed === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}

module.exports = { extract, isEsm, docFiles };
