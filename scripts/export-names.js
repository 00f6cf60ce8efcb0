'use strict';
// Export names of a CommonJS file compiled by tsc, read without running it
// (running it would load the native addon, which may not be built yet, e.g.
// from `prepare` during `npm pack`). It follows the forms tsc emits at the top
// level of a module: `exports.X = …` (and the hoisted `exports.X = exports.Y =
// void 0;`), `Object.defineProperty(exports, "X", …)`, and
// `__exportStar(require("./m"), exports)`, into the files those name.
// Used by scripts/write-lazy-root.js and scripts/write-esm.js.
const fs = require('node:fs');
const path = require('node:path');

/** The compiled file a relative specifier in `fromFile` names (`./m` → m.js or m/index.js). */
function resolveCompiled(fromFile, specifier) {
  const target = path.resolve(path.dirname(fromFile), specifier);
  return fs.existsSync(`${target}.js`) ? `${target}.js` : path.join(target, 'index.js');
}

const HOIST = /^(?:exports\.[A-Za-z_$][\w$]* = )+void 0;$/;

/**
 * The names a compiled module exports, in the order its `exports` object has
 * them when it has loaded, each with the kind of property it is:
 * 'data' (`exports.X = …`), 'getter' (a getter that can be redefined: tsc's
 * re-export of a name it hoisted) or 'fixed getter' (one that cannot:
 * defined without hoisting, or made by `__exportStar` for a data property).
 */
function exportKinds(file, within = new Set()) {
  const kinds = new Map();
  if (within.has(file)) return kinds; // a cycle of stars
  within = new Set(within).add(file);
  const hoisted = new Set();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    let m;
    if (HOIST.test(line)) {
      // `exports.c = exports.b = exports.a = void 0` assigns a first.
      const names = [...line.matchAll(/exports\.([A-Za-z_$][\w$]*) = /g)].map((n) => n[1]).reverse();
      for (const n of names) {
        hoisted.add(n);
        if (!kinds.has(n)) kinds.set(n, 'data');
      }
    } else if ((m = /^Object\.defineProperty\(exports, "([A-Za-z_$][\w$]*)", \{[^}]*\bget\b/.exec(line))) {
      kinds.set(m[1], hoisted.has(m[1]) ? 'getter' : 'fixed getter');
    } else if ((m = /^Object\.defineProperty\(exports, "([A-Za-z_$][\w$]*)"/.exec(line))) {
      if (!kinds.has(m[1])) kinds.set(m[1], 'data');
    } else if ((m = /^exports\.([A-Za-z_$][\w$]*) = /.exec(line))) {
      if (!kinds.has(m[1]) || kinds.get(m[1]) === 'data') kinds.set(m[1], 'data');
    } else if ((m = /^__exportStar\(require\("([^"]+)"\), exports\);$/.exec(line))) {
      // __exportStar skips names the module has; it copies a getter as it is
      // and puts a fixed getter over a data property.
      for (const [n, kind] of exportKinds(resolveCompiled(file, m[1]), within)) {
        if (!kinds.has(n)) kinds.set(n, kind === 'data' ? 'fixed getter' : kind);
      }
    }
  }
  kinds.delete('__esModule');
  kinds.delete('default');
  return kinds;
}

/** The names a compiled module exports (see exportKinds). */
function exportNames(file) {
  return new Set(exportKinds(file).keys());
}

module.exports = { exportKinds, exportNames, resolveCompiled };
