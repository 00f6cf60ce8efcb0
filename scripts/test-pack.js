'use strict';
// Tests what ships: packs the tarball and installs it into fresh projects.
//
// 1. With prebuilds, on a PATH that has node, npm and sh but no compiler,
//    make or python: the install must succeed without node-gyp, the addon
//    must load from prebuilds/, and require(), import and TypeScript types
//    must all work.
// 2. Without prebuilds, with the normal PATH: install must build from source.
//
// Prints `N passed, N failed` and exits non-zero on any failure.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
// Every prebuild .ci/run builds and tests on this machine: linux-x64 natively,
// linux-arm64 under qemu-user, win32-x64 under Wine (scripts/cross-prebuild.sh).
// RG_PACK_PREBUILDS (comma-separated) replaces the list, e.g. on a machine
// without the cross toolchains: RG_PACK_PREBUILDS=linux-x64/resource-guard.glibc.node
const EXPECTED_PREBUILDS = process.env.RG_PACK_PREBUILDS
  ? process.env.RG_PACK_PREBUILDS.split(',').filter(Boolean)
  : ['linux-x64/resource-guard.glibc.node', 'linux-arm64/resource-guard.glibc.node', 'win32-x64/resource-guard.node'];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-pack-'));
let passed = 0;
let failed = 0;

function check(name, fn) {
  try {
    fn();
    passed++;
    console.log(`  ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`  FAIL ${name}\n${String(err.stack || err).replace(/^/gm, '       ')}`);
  }
}

function run(cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir, cmd);
    if (fs.existsSync(p)) return fs.realpathSync(p);
  }
  throw new Error(`${cmd} not found on PATH`);
}

function pack(dest) {
  fs.mkdirSync(dest, { recursive: true });
  const out = run('npm', ['pack', '--silent', '--pack-destination', dest], { cwd: root });
  return path.join(dest, out.trim().split('\n').pop());
}

function project(name) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  return dir;
}

const smokeCjs = `
const rg = require('resource-guard');
const b = require('node-gyp-build');
const file = b.resolve(require('path').dirname(require.resolve('resource-guard/package.json')));
const budget = rg.Budget.open('pack-test', 100);
if (!budget.tryReserve(100) || budget.tryReserve(1)) throw new Error('budget semantics');
budget.release(100);
const rss = rg.readRss();
if (!(rss > 0)) throw new Error('rss ' + rss);
console.log(JSON.stringify({ file, rss, seq: rg.readSnapshot().seq }));
`;
const smokeEsm = `
import { readRss, Budget, MemoryLimitError } from 'resource-guard';
import rg from 'resource-guard';
if (!(readRss() > 0)) throw new Error('rss');
if (rg.Budget !== Budget) throw new Error('ESM and CJS must share one instance');
console.log('esm ok');
`;
const typesTs = `
import { Budget, readDisk, type DiskInfo, ResourceError } from 'resource-guard';
const b: Budget = Budget.open('t', 10);
const ok: boolean = b.tryReserve(1);
const d: DiskInfo = readDisk('/');
const e: ResourceError | undefined = undefined;
// @ts-expect-error bytes must be a number
b.tryReserve('1');
export { ok, d, e };
`;

try {
  console.log(`packing into ${work}`);
  const prebuildDir = path.join(root, 'prebuilds');
  const hasPrebuilds =
    fs.existsSync(prebuildDir) && fs.readdirSync(prebuildDir).some((d) => d.startsWith(`${process.platform}-${process.arch}`));
  if (!hasPrebuilds) throw new Error('run `npm run prebuild` first: no prebuild for this platform in prebuilds/');

  // ---- 1. prebuilt, no toolchain --------------------------------------------------
  const tarball = pack(path.join(work, 'with-prebuilds'));
  const listing = run('tar', ['-tzf', tarball]);
  check('tarball ships every prebuild built and tested on this machine', () => {
    for (const want of EXPECTED_PREBUILDS) {
      if (!listing.includes(`package/prebuilds/${want}\n`)) throw new Error(`missing prebuilds/${want}`);
      console.log(`       prebuilds/${want}`);
    }
  });
  check('tarball ships LICENSE, CHANGELOG.md and the sources its source maps point to', () => {
    for (const want of ['package/LICENSE', 'package/CHANGELOG.md', 'package/src/index.ts']) {
      if (!listing.includes(`${want}\n`)) throw new Error(`missing ${want}`);
    }
    const files = new Set(listing.split('\n'));
    const maps = [...files].filter((f) => f.endsWith('.js.map'));
    if (maps.length === 0) throw new Error('no source maps in dist/');
    for (const m of maps) {
      const map = JSON.parse(run('tar', ['-xzOf', tarball, m]));
      for (const src of map.sources) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(m), map.sourceRoot || '', src));
        if (!files.has(target)) throw new Error(`${m} points to ${target}, which is not in the tarball`);
      }
    }
  });
  check('tarball ships dist, native sources, binding.gyp and prebuilds, not build/', () => {
    for (const want of ['package/dist/index.js', 'package/dist/index.mjs', 'package/dist/index.d.ts', 'package/binding.gyp', 'package/native/addon.cc']) {
      if (!listing.includes(want)) throw new Error(`missing ${want}`);
    }
    if (!/package\/prebuilds\/[^/]+\/[^\n]*\.node/.test(listing)) throw new Error('no prebuilt .node in the tarball');
    if (/package\/build\//.test(listing)) throw new Error('build/ must not ship');
  });

  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  for (const tool of ['node', 'npm', 'sh']) fs.symlinkSync(which(tool), path.join(bin, tool));
  // npm's own entry point must be reachable as a script next to node.
  fs.rmSync(path.join(bin, 'npm'));
  const npmCli = path.join(path.dirname(which('npm')), 'npm-cli.js');
  fs.writeFileSync(path.join(bin, 'npm'), `#!${which('sh')}\nexec ${which('node')} ${fs.existsSync(npmCli) ? npmCli : which('npm')} "$@"\n`, { mode: 0o755 });
  const bare = { ...process.env, PATH: bin, npm_config_nodedir: '', npm_config_update_notifier: 'false' };
  for (const tool of ['cc', 'gcc', 'g++', 'c++', 'make', 'python3', 'python']) {
    if (fs.existsSync(path.join(bin, tool))) throw new Error(`${tool} leaked into the bare PATH`);
  }

  const p1 = project('consumer-prebuilt');
  check('npm install of the tarball succeeds with no compiler, make or python on PATH', () => {
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: p1, env: bare });
  });
  const installed = path.join(p1, 'node_modules', 'resource-guard');
  check('node-gyp never ran: no build/ directory in the installed package', () => {
    if (fs.existsSync(path.join(installed, 'build'))) throw new Error('build/ exists: node-gyp ran');
  });
  check('require() loads the addon from prebuilds/', () => {
    const out = JSON.parse(run('node', ['-e', smokeCjs], { cwd: p1, env: bare }));
    if (!out.file.includes(`${path.sep}prebuilds${path.sep}`)) throw new Error(`loaded ${out.file}`);
  });
  check('import loads it too (ESM entry shares the CJS instance)', () => {
    const out = run('node', ['--input-type=module', '-e', smokeEsm], { cwd: p1, env: bare });
    if (!out.includes('esm ok')) throw new Error(out);
  });
  check('PREBUILDS_ONLY=1 loads the prebuild', () => {
    run('node', ['-e', smokeCjs], { cwd: p1, env: { ...bare, PREBUILDS_ONLY: '1' } });
  });
  check('TypeScript consumers get the types (module nodenext, with @types/node)', () => {
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '@types/node@20'], { cwd: p1, env: bare });
    fs.writeFileSync(path.join(p1, 'index.ts'), typesTs);
    fs.writeFileSync(
      path.join(p1, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['index.ts'] }),
    );
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      run(process.execPath, [tsc, '-p', p1]);
    } catch (err) {
      throw new Error(`${err.stdout}${err.stderr}`);
    }
  });

  // ---- 2. no prebuild: build from source --------------------------------------------
  const aside = path.join(work, 'prebuilds-aside');
  fs.renameSync(prebuildDir, aside);
  let tarball2;
  try {
    tarball2 = pack(path.join(work, 'without-prebuilds'));
  } finally {
    fs.renameSync(aside, prebuildDir);
  }
  const p2 = project('consumer-source');
  check('without a matching prebuild, install builds from source', () => {
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball2], { cwd: p2 });
    const built = path.join(p2, 'node_modules', 'resource-guard', 'build', 'Release', 'resource_guard.node');
    if (!fs.existsSync(built)) throw new Error('no build/Release/resource_guard.node after install');
    const out = JSON.parse(run('node', ['-e', smokeCjs], { cwd: p2 }));
    if (!out.file.includes(`${path.sep}build${path.sep}`)) throw new Error(`loaded ${out.file}`);
  });
} catch (err) {
  failed++;
  console.log(`  FAIL setup\n${String(err.stack || err).replace(/^/gm, '       ')}`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

console.log(`pack: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
