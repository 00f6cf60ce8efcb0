declare module 'node-gyp-build' {
  /** Loads the addon for `dir` (prebuilds/ or build/), throwing if none fits. */
  function load(dir: string): unknown;
  namespace load {
    function resolve(dir: string): string;
  }
  export = load;
}
