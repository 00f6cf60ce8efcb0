'use strict';
// Export names of a CommonJS file compiled by tsc, read without running it
// (running it would load the native addon, which may not be built yet, e.g.
// from `prepare` during `npm pack`). It follows the two forms tsc emits:
// `exports.X = …` / `Object.defineProperty(exports, "X", …)`, and
// `__exportStar(require("./m"), exports)`, into the files those name.
// Used by scripts/write-lazy-root.js and scripts/write-esm.js.
const fs = require('node:fs');
const path = require('node:path');

/** The compiled file a relative specifier in `fromFile` names (`./m` → m.js or m/index.js). */
function resolveCompiled(fromFile, specifier) {
  const target = path.resolve(path.dirname(fromFile), specifier);
  return fs.existsSync(`${target}.js`) ? `${target}.js` : path.join(target, 'index.js');
}

function exportNames(file, seen = new Set()) {
  if (seen.has(file)) return new Set();
  seen.add(file);
  const src = fs.readFileSync(file, 'utf8');
  const names = new Set();
  for (const m of src.matchAll(/Object\.defineProperty\(exports, "([A-Za-z_$][\w$]*)"/g)) names.add(m[1]);
  for (const m of src.matchAll(/^exports\.([A-Za-z_$][\w$]*) = /gm)) names.add(m[1]);
  for (const m of src.matchAll(/__exportStar\(require\("([^"]+)"\), exports\)/g)) {
    for (const n of exportNames(resolveCompiled(file, m[1]), seen)) names.add(n);
  }
  names.delete('__esModule');
  names.delete('default');
  return names;
}

module.exports = { exportNames, resolveCompiled };
