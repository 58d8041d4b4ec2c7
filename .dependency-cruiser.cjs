// Arrows between packages point down only: cli -> engine -> build -> oci.
// A package may import only packages below it; oci imports no other slipway package.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'oci-is-the-bottom', severity: 'error', from: { path: '^packages/oci/' }, to: { path: '^packages/(build|engine|cli)/|@slipway/(build|engine|cli)' } },
    { name: 'build-uses-only-oci', severity: 'error', from: { path: '^packages/build/' }, to: { path: '^packages/(engine|cli)/|@slipway/(engine|cli)' } },
    { name: 'engine-never-imports-front-doors', severity: 'error', from: { path: '^packages/engine/' }, to: { path: '^packages/cli/|@slipway/cli' } },
    { name: 'no-deep-imports-across-packages', severity: 'error',
      comment: 'import another package through its public entry (@slipway/x), never its files',
      from: { path: '^packages/([^/]+)/' }, to: { path: '^packages/([^/]+)/src/', pathNot: '^packages/$1/' } },
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/|\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'types', 'default'] },
  },
};
